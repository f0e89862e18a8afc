"""Unit tests of the harness's own logic (no GPU, no torch): argument handling, model table,
error checks, case status, table/JSON building, kiln CLI driving (with a fake kiln), timing maths.
Run: python3 -m unittest discover -s bench/tests
"""
import json
import math
import os
import stat
import sys
import tempfile
import unittest
from types import SimpleNamespace

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import kilncli  # noqa: E402
import models  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402
import zoo  # noqa: E402

try:
    import numpy  # noqa: F401
    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False


def case(model="resnet50", batch=1, precision="fp16", kiln=None, contenders=None, errors=None, **kw):
    c = {"model": model, "batch": batch, "precision": precision, "kind": "cnn", "flops": 8.2e9 * batch,
         "contenders": contenders if contenders is not None else
         {"eager": {"median_ms": 3.7, "rel_l2": 8e-4}, "eager+graph": {"median_ms": 1.04}, "cl+graph": {"median_ms": 0.90},
          "compile": {"error": "n/a: RuntimeError: boom"}},
         "kiln": kiln if kiln is not None else {"skipped": True}, "errors": errors or {}}
    c.update(kw)
    return report.finalize_case(c)


class Args(unittest.TestCase):
    def test_defaults(self):
        a = zoo.parse_args([])
        self.assertEqual([m.name for m in a.model_specs], [m.name for m in models.ZOO])
        self.assertEqual(a.precision, "fp16")
        self.assertEqual(a.exporter_list, ["torchscript", "dynamo"])
        self.assertFalse(a.autotune or a.skip_kiln)
        self.assertEqual(a.work, os.path.join(a.out, "work"))

    def test_models_and_batches(self):
        a = zoo.parse_args(["--models", "resnet50,bert_base", "--batch", "1,large", "--precision", "fp32",
                            "--autotune", "--kiln=/x/kiln", "--skip-kiln", "--out", "r"])
        self.assertEqual([m.name for m in a.model_specs], ["resnet50", "bert_base"])
        self.assertEqual(models.resolve_batches(a.model_specs[0], a.batch_tokens), [1, 128])
        self.assertEqual(models.resolve_batches(a.model_specs[1], a.batch_tokens), [1, 64])
        self.assertTrue(a.autotune and a.skip_kiln)
        self.assertEqual(a.kiln, "/x/kiln")

    def test_bad_arguments_exit(self):
        for argv in (["--models", "nosuch"], ["--batch", "0"], ["--batch", "big"], ["--precision", "int4"],
                     ["--exporters", "tflite"]):
            with self.subTest(argv=argv), self.assertRaises(SystemExit):
                with open(os.devnull, "w") as devnull:
                    old, sys.stderr = sys.stderr, devnull
                    try:
                        zoo.parse_args(argv)
                    finally:
                        sys.stderr = old

    def test_unknown_model_raises_in_select(self):
        with self.assertRaises(ValueError):
            models.select(["resnet50", "nope"])

    def test_kiln_needs_its_export(self):
        a = zoo.parse_args(["--exporters", "none", "--onnx-from", "dynamo"])
        self.assertEqual(a.exporter_list, ["dynamo"])
        a = zoo.parse_args(["--exporters", "none", "--skip-kiln"])
        self.assertEqual(a.exporter_list, [])


class ModelTable(unittest.TestCase):
    def test_zoo(self):
        names = [m.name for m in models.ZOO]
        self.assertEqual(names, ["resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "bert_base"])
        for m in models.ZOO:
            self.assertIn(m.kind, ("cnn", "transformer"))
            self.assertEqual(m.batches[1], 128 if m.kind == "cnn" else 64)
            self.assertTrue(callable(m.build) and callable(m.make_inputs))
        self.assertEqual(models.BY_NAME["bert_base"].input_names, ("input_ids", "attention_mask"))
        self.assertFalse(models.BY_NAME["bert_base"].classifier)

    def test_outside_zoo(self):
        names = [m.name for m in models.select(["outside"])]
        self.assertIn("swin_t", names)
        self.assertIn("llama_like", names)
        self.assertFalse(set(names) & {m.name for m in models.ZOO})
        self.assertEqual(models.BY_NAME["gpt2"].input_names, ("input_ids", "attention_mask"))

    def test_batches_dedup(self):
        self.assertEqual(models.resolve_batches(models.BY_NAME["vit_b_16"], ["small", "1", "64", "large"]), [1, 64])


@unittest.skipUnless(HAVE_NUMPY, "numpy not installed")
class Errors(unittest.TestCase):
    def test_compare(self):
        e = report.compare([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]], [1.0, 2.0, 3.1, 0.0, 4.0, 6.0], classifier=True)
        self.assertAlmostEqual(e["max_abs"], 5.0)
        self.assertAlmostEqual(e["rel_l2"], math.sqrt(0.01 + 1 + 25) / math.sqrt(1 + 4 + 9 + 25 + 1))
        self.assertEqual(e["top1"], 0.5)

    def test_nan_and_size(self):
        self.assertEqual(report.compare([1.0, 2.0], [float("nan"), 2.0])["rel_l2"], math.inf)
        with self.assertRaises(ValueError):
            report.compare([1.0, 2.0], [1.0])


class Status(unittest.TestCase):
    def test_bounds(self):
        self.assertTrue(report.within_bound({"y": {"rel_l2": 9e-3}}, "fp16"))
        self.assertFalse(report.within_bound({"y": {"rel_l2": 2e-3}}, "fp32"))
        self.assertTrue(report.within_bound({"y": {"rel_l2": 0.5}}, "int8"))  # reported only
        self.assertFalse(report.within_bound({}, "fp16"))
        self.assertFalse(report.within_bound({"y": {"rel_l2": float("nan")}}, "int8"))

    def test_best_pytorch_ignores_failures(self):
        self.assertEqual(report.best_pytorch({"a": {"median_ms": 2.0}, "b": {"error": "x"}, "c": {"median_ms": 1.5}}),
                         ("c", 1.5))
        self.assertEqual(report.best_pytorch({"b": {"error": "x"}}), (None, None))

    def test_skipped(self):
        c = case()
        self.assertEqual(c["status"], "skipped")
        self.assertEqual((c["best_pt"], c["best_pt_ms"]), ("cl+graph", 0.90))
        self.assertIsNone(c["speedup"])
        self.assertEqual(report.exit_code([c]), 0)

    def test_kiln_failed_to_run(self):
        c = case(kiln={"ok": False, "reason": "n/a: CUDA backend not built"})
        self.assertEqual(c["status"], "FAILED")
        self.assertEqual(c["fail_reasons"], ["n/a: CUDA backend not built"])
        self.assertEqual(report.exit_code([c]), 1)
        self.assertIn("n/a: CUDA backend not built", report.markdown_table([c]))

    def test_kiln_ok_and_over_bound(self):
        ok = case(kiln={"ok": True, "median_ms": 0.45, "build_s": 3.0, "engine_mib": 50.0},
                  errors={"output": {"rel_l2": 2e-3, "max_abs": 0.01}}, top1=1.0)
        self.assertEqual(ok["status"], "ok")
        self.assertAlmostEqual(ok["speedup"], 2.0)
        bad = case(precision="fp32", kiln={"ok": True, "median_ms": 0.45},
                   errors={"output": {"rel_l2": 2e-3, "max_abs": 0.01}})
        self.assertEqual(bad["status"], "FAILED")
        self.assertIn("over bound", bad["fail_reasons"][0])
        self.assertEqual(report.exit_code([ok, bad]), 1)

    def test_geomean_and_summary(self):
        self.assertAlmostEqual(report.geomean([2.0, 8.0]), 4.0)
        self.assertIsNone(report.geomean([None, 0.0]))
        a = case(kiln={"ok": True, "median_ms": 0.45}, errors={"o": {"rel_l2": 1e-4, "max_abs": 1e-3}})
        b = case(model="x", kiln={"ok": True, "median_ms": 1.8}, errors={"o": {"rel_l2": 1e-4, "max_abs": 1e-3}})
        f = case(model="y", kiln={"ok": False, "reason": "n/a: x"})
        self.assertEqual(report.summary_line([a, b, f]), "geomean speedup kiln / best PyTorch: 1.000x over 2 of 3 cases")
        self.assertIn("n/a (kiln ran in 0 of 1 cases)", report.summary_line([f]))


class Table(unittest.TestCase):
    def test_markdown_and_json(self):
        cs = [case(pt_act_bytes=10 * 2**20),
              case(model="bert_base", batch=64, contenders={"eager": {"median_ms": 20.0},
                                                            "compile": {"median_ms": 4.0, "setup_s": 41.2}},
                   kiln={"ok": True, "median_ms": 2.0, "build_s": 12.3, "engine_mib": 210.0, "act_bytes": 2**24},
                   errors={"last_hidden_state": {"rel_l2": 3e-3, "max_abs": 0.1},
                           "pooler_output": {"rel_l2": 1e-3, "max_abs": 0.01}})]
        t = report.markdown_table(cs, peak_tflops=700.0).splitlines()
        self.assertEqual(len(t), 2 + len(cs))
        ncols = t[0].count("|")
        self.assertTrue(all(l.count("|") == ncols for l in t))
        self.assertIn("compile ms", t[0])
        self.assertNotIn("compile-max-autotune", t[0])
        self.assertIn("0.900 (cl+graph)", t[2])
        self.assertIn("n/a: RuntimeError: boom", t[2])
        self.assertIn("8.0e-04", t[2])
        self.assertIn("2.00x", t[3])
        self.assertIn("3.0e-03 / 1.0e-01", t[3])  # worst output
        self.assertIn("16 / -", t[3])
        self.assertIn("| 12.3 | 41 |", t[3])  # build s, PT compile s
        # 8.2e9*64 flops in 2 ms = 262 TFLOP/s = 37% of 700
        self.assertIn("262 (37%)", t[3])
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "r.json")
            cs[1]["errors"]["x"] = {"rel_l2": math.inf, "max_abs": math.inf}
            report.write_json(p, {"device": "test"}, cs)
            with open(p) as f:
                doc = json.load(f)  # strict JSON: inf written as a string
            self.assertEqual(doc["meta"]["device"], "test")
            self.assertEqual(len(doc["cases"]), 2)
            self.assertTrue(doc["summary"].startswith("geomean"))


class Timing(unittest.TestCase):
    def test_run_counts(self):
        self.assertEqual(timing.min_runs(1), 100)
        self.assertEqual(timing.min_runs(128), 30)
        self.assertEqual(timing.run_count(1, 50.0), 100)
        self.assertEqual(timing.run_count(128, 100.0), 30)
        self.assertEqual(timing.run_count(1, 1e-6), timing.MAX_RUNS)

    def test_summarize_and_trtexec_times(self):
        s = timing.summarize([3.0, 1.0, 2.0, 10.0])
        self.assertEqual((s["median_ms"], s["min_ms"], s["runs"]), (2.5, 1.0, 4))
        recs = [{"startComputeMs": 0, "endComputeMs": 1, "computeMs": 0.5 + i, "latencyMs": 9.0} for i in range(3)]
        self.assertEqual(timing.times_from_trtexec(recs), ([0.5, 1.5, 2.5], "computeMs"))
        self.assertEqual(timing.times_from_trtexec([{"latencyMs": 2.0}]), ([2.0], "latencyMs"))
        with self.assertRaises(ValueError):
            timing.times_from_trtexec([{"enqMs": 1.0}])
        with self.assertRaises(ValueError):
            timing.times_from_trtexec([])


FAKE_KILN = r'''#!/usr/bin/env python3
import json, os, sys
a = dict(x[2:].split("=", 1) if "=" in x else (x[2:], "") for x in sys.argv[1:])
mode = os.environ.get("FAKE_KILN_MODE", "ok")
if mode == "nocuda":
    print("[I] kiln"); print("[E] error: --backend=cuda: CUDA backend not built", file=sys.stderr); sys.exit(1)
if "saveEngine" in a:
    if "timingCacheFile" in a:
        warm = os.path.exists(a["timingCacheFile"])
        print("[I] tactic timing: timed %d of 5 layers" % (0 if warm else 5))
        open(a["timingCacheFile"], "a").write("entries")
    open(a["saveEngine"], "wb").write(b"\0" * 2**20); print("[I] Total Activation Memory: 1048576 bytes"); sys.exit(0)
n = int(a["iterations"])
json.dump([{"startComputeMs": i, "endComputeMs": i + 1, "computeMs": 0.25, "latencyMs": 0.3} for i in range(n)],
          open(a["exportTimes"], "w"))
json.dump([{"name": "output", "dimensions": "2x3", "values": [1, 2, 3, 4, 5, 6]}], open(a["exportOutput"], "w"))
open(os.environ["FAKE_KILN_ARGV"], "w").write(json.dumps(sys.argv[1:]))
'''


class KilnCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.kiln = os.path.join(self.d, "kiln")
        with open(self.kiln, "w") as f:
            f.write(FAKE_KILN)
        os.chmod(self.kiln, os.stat(self.kiln).st_mode | stat.S_IEXEC)
        self.spec = SimpleNamespace(name="m", input_names=("input",), output_names=("output",),
                                    make_inputs=lambda b: (SimpleNamespace(shape=(b, 3)),))
        os.environ["FAKE_KILN_ARGV"] = os.path.join(self.d, "argv.json")

    def tearDown(self):
        os.environ.pop("FAKE_KILN_MODE", None)
        self.tmp.cleanup()

    def test_commands(self):
        b = kilncli.build_cmd("k", "m.onnx", "e", "fp16", ["x", "y"], [(1, 3), (1, 4)], [(8, 3), (8, 4)], [(8, 3), (8, 4)])
        self.assertEqual(b, ["k", "--onnx=m.onnx", "--saveEngine=e", "--fp16", "--minShapes=x:1x3,y:1x4",
                             "--optShapes=x:8x3,y:8x4", "--maxShapes=x:8x3,y:8x4", "--skipInference", "--backend=cuda"])
        self.assertIn("--noTF32", kilncli.build_cmd("k", "m", "e", "fp32", ["x"], [(1,)], [(1,)], [(1,)]))

    def test_ok(self):
        r = kilncli.build_and_run(self.kiln, "m.onnx", os.path.join(self.d, "c"), "fp16", self.spec, 2,
                                  {"input": "in.bin"}, est_ms=0.25)
        self.assertTrue(r["ok"], r.get("reason"))
        self.assertEqual(r["times"]["median_ms"], 0.25)
        self.assertEqual(r["time_field"], "computeMs")
        self.assertEqual(r["engine_mib"], 1.0)
        self.assertEqual(r["act_bytes"], 2**20)
        self.assertEqual(r["outputs"]["output"][0], [2, 3])
        with open(os.environ["FAKE_KILN_ARGV"]) as f:
            argv = json.load(f)
        for flag in ("--shapes=input:2x3", "--loadInputs=input:in.bin", "--useCudaGraph", "--backend=cuda",
                     "--duration=0", "--iterations=%d" % timing.run_count(2, 0.25)):
            self.assertIn(flag, argv)

    def test_tuned_builds_cold_then_warm(self):
        casedir = os.path.join(self.d, "c")
        for _ in range(2):  # a second run of the bench starts cold again (the cache is removed first)
            r = kilncli.build_and_run(self.kiln, "m.onnx", casedir, "fp16", self.spec, 2, {"input": "in.bin"},
                                      est_ms=0.25, tune=True)
            self.assertTrue(r["ok"], r.get("reason"))
            self.assertEqual(r["timed_cold"], (5, 5))
            self.assertEqual(r["timed_warm"], (0, 5))
            self.assertGreater(r["build_warm_s"], 0)
            self.assertIn("--builderOptimizationLevel=3", r["commands"][0])
            self.assertIn("--timingCacheFile=" + os.path.join(casedir, "timing.cache"), r["commands"][1])
        self.assertFalse(os.path.exists(os.path.join(casedir, "kiln_fp16_warm.engine")))
        self.assertEqual(report._build_cell({"build_s": 9.04, "build_warm_s": 0.512}), "9.0 / 0.51")
        self.assertEqual(report._build_cell({"build_s": 9.04}), "9.0")

    def test_failure_reason(self):
        os.environ["FAKE_KILN_MODE"] = "nocuda"
        r = kilncli.build_and_run(self.kiln, "m.onnx", os.path.join(self.d, "c"), "fp16", self.spec, 1, {})
        self.assertFalse(r["ok"])
        self.assertEqual(r["reason"], "n/a: error: --backend=cuda: CUDA backend not built")
        self.assertTrue(os.path.exists(os.path.join(self.d, "c", "kiln.log")))

    def test_missing_binary(self):
        r = kilncli.build_and_run(None, "m.onnx", self.d, "fp16", self.spec, 1, {})
        self.assertEqual((r["ok"], r["reason"]), (False, "n/a: kiln binary not found (give --kiln)"))
        self.assertIsNone(kilncli.find_kiln(os.path.join(self.d, "nope")))

    def test_parsers(self):
        self.assertEqual(kilncli.parse_dims("1x1000"), [1, 1000])
        self.assertEqual(kilncli.parse_dims([4, 5]), [4, 5])
        self.assertEqual(kilncli.parse_activation_bytes("[I] Total Activation Memory: 25690112 bytes"), 25690112)
        self.assertEqual(kilncli.parse_activation_bytes("Activation Memory: 3 MiB"), 3 * 2**20)
        self.assertIsNone(kilncli.parse_activation_bytes("nothing"))
        self.assertEqual(kilncli.failure_reason("", 3), "n/a: exit code 3, no output")
        self.assertEqual(kilncli.failure_reason("[I] a\n[I] last line", 1), "n/a: last line")


if __name__ == "__main__":
    unittest.main()
