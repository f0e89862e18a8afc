"""Python subclasses of TensorRT's callback interfaces called by kiln: IProgressMonitor (and the
build phases through the logger), IProfiler / Profiler, IOutputAllocator; exceptions they raise
come back from the library call that ran them."""
import ctypes
import unittest

import numpy as np

import kiln
import models
from test_build_run import MLP_PROFILE, build


def build_with(config_hook, logger=None):
    logger = logger or kiln.Logger(kiln.Logger.INTERNAL_ERROR)
    builder = kiln.Builder(logger)
    network = builder.create_network()
    assert kiln.OnnxParser(network, logger).parse(models.convnet().SerializeToString())
    config = builder.create_builder_config()
    config.backend = kiln.Backend.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))
    config.add_optimization_profile(profile)
    config_hook(config)
    return builder.build_serialized_network(network, config)


class Progress(unittest.TestCase):
    def test_monitor_is_told_every_phase_and_step(self):
        class Monitor(kiln.IProgressMonitor):
            def __init__(self):
                kiln.IProgressMonitor.__init__(self)
                self.events = []

            def phase_start(self, phase_name, parent_phase, num_steps):
                self.events.append(("start", phase_name, parent_phase, num_steps))

            def step_complete(self, phase_name, step):
                self.events.append(("step", phase_name, step))
                return True

            def phase_finish(self, phase_name):
                self.events.append(("finish", phase_name))

        monitor = Monitor()

        def hook(config):
            config.progress_monitor = monitor
            self.assertIs(config.progress_monitor, monitor)

        self.assertIsNotNone(build_with(hook))
        starts = [e for e in monitor.events if e[0] == "start"]
        self.assertEqual([e[1] for e in starts], ["Graph optimization", "Tactic selection"])
        self.assertIsNone(starts[0][2])
        steps = [e for e in monitor.events if e[0] == "step" and e[1] == "Tactic selection"]
        self.assertEqual([e[2] for e in steps], list(range(starts[1][3])))
        self.assertEqual(monitor.events[-1], ("finish", "Tactic selection"))

    def test_returning_false_cancels_and_exceptions_are_raised(self):
        class Cancel(kiln.IProgressMonitor):
            def phase_start(self, *a):
                pass

            def step_complete(self, phase_name, step):
                return False

            def phase_finish(self, *a):
                pass

        class Broken(Cancel):
            def step_complete(self, phase_name, step):
                raise KeyError("monitor bug")

        logger = models.Collect()
        cancel = Cancel()
        self.assertIsNone(build_with(lambda c: setattr(c, "progress_monitor", cancel), logger))
        self.assertTrue(any("cancelled" in m for s, m in logger.seen if s == kiln.Logger.ERROR), logger.seen)
        broken = Broken()
        with self.assertRaisesRegex(KeyError, "monitor bug"):
            build_with(lambda c: setattr(c, "progress_monitor", broken))
        with self.assertRaisesRegex(TypeError, "IProgressMonitor"):
            build_with(lambda c: setattr(c, "progress_monitor", object()))

    def test_phases_go_to_the_logger(self):
        logger = models.Collect()
        self.assertIsNotNone(build_with(lambda c: None, logger))
        infos = [m for s, m in logger.seen if s == kiln.Logger.INFO]
        self.assertIn("Build phase: Graph optimization (1 step)", infos)
        self.assertTrue(any(m.startswith("Build phase: Tactic selection (") for m in infos), infos)
        self.assertIn("Build phase done: Tactic selection", infos)


class Profilers(unittest.TestCase):
    def test_python_profiler_gets_every_layer(self):
        engine, _ = build(models.convnet(), [{"x": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}], backend=kiln.Backend.CPU)

        class Times(kiln.IProfiler):
            def __init__(self):
                kiln.IProfiler.__init__(self)
                self.layers = []

            def report_layer_time(self, layer_name, ms):
                self.layers.append((layer_name, ms))

        ctx = engine.create_execution_context()
        times = Times()
        ctx.profiler = times
        self.assertIs(ctx.profiler, times)
        ctx.infer({"x": np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)})
        names = [engine.get_layer_info(i)["name"] for i in range(engine.num_layers)]
        self.assertEqual([n for n, _ in times.layers], names)
        self.assertTrue(all(ms >= 0 for _, ms in times.layers))
        ctx.profiler = None
        ctx.infer({"x": np.ones((2, 3, 8, 8), np.float32)})
        self.assertEqual(len(times.layers), len(names))
        with self.assertRaisesRegex(TypeError, "IProfiler"):
            ctx.profiler = 3
        self.assertIsInstance(kiln.Profiler(), kiln.IProfiler)


class OutputAllocators(unittest.TestCase):
    def test_python_allocator_gets_data_dependent_outputs(self):
        model = models.nonzero()
        engine, _ = build(model, [{"x": ((1,), (8,), (64,))}], backend=kiln.Backend.CPU)

        class Alloc(kiln.IOutputAllocator):
            def __init__(self):
                kiln.IOutputAllocator.__init__(self)
                self.buffers, self.shapes, self.calls = [], {}, []

            def reallocate_output(self, tensor_name, memory, size, alignment):
                self.calls.append((tensor_name, size, alignment))
                buf = np.empty(max(size, 1), np.uint8)
                self.buffers.append(buf)
                return buf.ctypes.data

            def notify_shape(self, tensor_name, shape):
                self.shapes[tensor_name] = shape

        x = np.array([0, 3, 0, 1, 2], np.float32)
        ctx = engine.create_execution_context()
        alloc = Alloc()
        self.assertTrue(ctx.set_output_allocator("idx", alloc))
        self.assertIs(ctx.get_output_allocator("idx"), alloc)
        self.assertTrue(ctx.set_input_shape("x", x.shape))
        self.assertTrue(ctx.set_tensor_address("x", x))
        self.assertTrue(ctx.execute_async_v3(0))
        self.assertEqual(alloc.shapes["idx"], (1, 3))
        got = np.frombuffer(alloc.buffers[-1][:24].tobytes(), np.int64).reshape(1, 3)
        np.testing.assert_array_equal(got, models.reference(model, {"x": x})["idx"])
        self.assertEqual(alloc.calls[-1], ("idx", 24, 256))
        self.assertFalse(ctx.set_output_allocator("x", alloc))  # not an output: False, logged

    def test_allocator_errors_are_raised_and_the_context_recovers(self):
        model = models.nonzero()
        engine, _ = build(model, [{"x": ((1,), (8,), (64,))}], backend=kiln.Backend.CPU)

        class Broken(kiln.IOutputAllocator):
            def reallocate_output(self, tensor_name, memory, size, alignment):
                raise MemoryError("pool empty")

            def notify_shape(self, tensor_name, shape):
                pass

        class NoneBack(Broken):
            def reallocate_output(self, tensor_name, memory, size, alignment):
                return None

        x = np.array([1, 0, 2], np.float32)
        ctx = engine.create_execution_context()
        ctx.set_input_shape("x", x.shape)
        ctx.set_tensor_address("x", x)
        ctx.set_output_allocator("idx", Broken())
        with self.assertRaisesRegex(MemoryError, "pool empty"):
            ctx.execute_async_v3(0)
        ctx.set_output_allocator("idx", NoneBack())
        self.assertFalse(ctx.execute_async_v3(0))
        with self.assertRaisesRegex(TypeError, "IOutputAllocator"):
            ctx.set_output_allocator("idx", object())
        np.testing.assert_array_equal(ctx.infer({"x": x})["idx"], [[0, 2]])  # infer() uses its own


if __name__ == "__main__":
    unittest.main()
