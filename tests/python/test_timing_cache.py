"""Kernel auto-tuning from Python (issue 15 through the TensorRT API): ITimingCache made with
IBuilderConfig.create_timing_cache, filled by a build, serialized, read back by a second build
that times nothing; combine/reset; DISABLE_TIMING_CACHE; set_tactic_sources and
avg_timing_iterations; bad cache bytes refused with the reason. CPU backend: its GEMM layers have
two tactics (OpenBLAS and kiln's loops), so the builder times them."""
import re
import unittest

import kiln
import models


def build(model, logger, setup):
    builder = kiln.Builder(logger)
    network = builder.create_network()
    parser = kiln.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString())
    config = builder.create_builder_config()
    config.backend = kiln.Backend.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (4, 4), (16, 4))
    config.add_optimization_profile(profile)
    setup(config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, [m for _, m in logger.seen]
    return kiln.Runtime(logger).deserialize_cuda_engine(plan)


def timed(logger):
    """(layers timed, layers with a choice) from the build's 'tactic timing' line."""
    for _, msg in logger.seen:
        m = re.search(r"tactic timing: timed (\d+) of (\d+) layers", msg)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


class TimingCache(unittest.TestCase):
    def test_a_filled_cache_makes_the_next_build_time_nothing(self):
        model = models.mlp()
        config_seen = {}

        def fill(config):
            cache = config.create_timing_cache(b"")
            self.assertEqual(len(cache), 0)
            self.assertTrue(config.set_timing_cache(cache, False))
            config_seen["cache"] = config.get_timing_cache()

        log = models.Collect()
        build(model, log, fill)
        done, total = timed(log)
        self.assertGreaterEqual(total, 1)
        self.assertEqual(done, total)
        cache = config_seen["cache"]
        self.assertGreater(len(cache), 0)  # the build recorded its timings into the cache it was given
        blob = bytes(cache.serialize())

        def reuse(config):
            config.set_timing_cache(config.create_timing_cache(blob), ignore_mismatch=False)

        log2 = models.Collect()
        engine = build(model, log2, reuse)
        self.assertEqual(timed(log2), (0, total))
        self.assertIsNotNone(engine)

        # combine adds what the other lacks; reset empties
        empty = kiln.Builder(kiln.Logger()).create_builder_config().create_timing_cache(b"")
        self.assertTrue(empty.combine(cache, False))
        self.assertEqual(len(empty), len(cache))
        self.assertTrue(empty.reset())
        self.assertEqual(len(empty), 0)

    def test_disable_timing_cache_and_sources(self):
        model = models.mlp()
        blob = {}

        def disabled(config):
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache)
            config.set_flag(kiln.BuilderFlag.DISABLE_TIMING_CACHE)
            self.assertTrue(config.get_flag(kiln.BuilderFlag.DISABLE_TIMING_CACHE))
            config.avg_timing_iterations = 2
            self.assertEqual(config.avg_timing_iterations, 2)
            blob["cache"] = cache

        build(model, models.Collect(), disabled)
        self.assertEqual(len(blob["cache"]), 0)  # neither read nor recorded

        def loops_only(config):
            config.set_tactic_sources(1 << int(kiln.TacticSource.CPU_LOOPS))
            self.assertEqual(config.get_tactic_sources(), 1 << int(kiln.TacticSource.CPU_LOOPS))

        engine = build(model, models.Collect(), loops_only)
        tactics = [engine.get_layer_info(i)["tactic"] for i in range(engine.num_layers)]
        self.assertTrue(any(t.endswith(".loops") for t in tactics), tactics)

    def test_bad_values_are_refused(self):
        config = kiln.Builder(kiln.Logger()).create_builder_config()
        with self.assertRaisesRegex(ValueError, "create_timing_cache"):
            config.create_timing_cache(b"this is not a timing cache")
        with self.assertRaisesRegex(ValueError, "avg_timing_iterations"):
            config.avg_timing_iterations = 0
        with self.assertRaisesRegex(ValueError, "set_tactic_sources"):
            config.set_tactic_sources(1 << 12)
        self.assertIsNone(config.get_timing_cache())


if __name__ == "__main__":
    unittest.main()
