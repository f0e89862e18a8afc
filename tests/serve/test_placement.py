"""kiln serve's placement and option parsing (python/kiln/serve.py), without GPUs or a server."""
import json
import os

import pytest

from kiln import serve


def test_placement_spreads_instances_over_devices():
    assert serve.placement(1, None) == [None]
    assert serve.placement(3, None) == [None, None, None]
    assert serve.placement(1, [0, 1, 2, 3]) == [0, 1, 2, 3]
    assert serve.placement(2, [0, 1]) == [0, 1, 0, 1]
    assert serve.placement(2, [3, 1], device_count=4) == [3, 1, 3, 1]
    # one engine per device, each device gets the same number of instances
    p = serve.placement(3, [0, 2, 5], device_count=8)
    assert {d: p.count(d) for d in set(p)} == {0: 3, 2: 3, 5: 3}


def test_placement_errors():
    with pytest.raises(serve.ServeError, match="at least 1"):
        serve.placement(0, [0])
    with pytest.raises(serve.ServeError, match="no CUDA device 2 on this machine \\(2 found\\)"):
        serve.placement(1, [0, 2], device_count=2)
    with pytest.raises(serve.ServeError, match="empty"):
        serve.placement(1, [])


def test_parse_devices():
    assert serve.parse_devices(None) is None and serve.parse_devices("") is None
    assert serve.parse_devices("0,1, 3") == [0, 1, 3]
    with pytest.raises(serve.ServeError, match="'a' is not a device index"):
        serve.parse_devices("0,a")
    with pytest.raises(serve.ServeError, match="twice"):
        serve.parse_devices("1,1")


def test_parse_profile():
    assert serve.parse_profile("x:1x4,8x4,32x4") == {"x": ((1, 4), (8, 4), (32, 4))}
    assert serve.parse_profile("a:2x3;b:1x1,2x1,4x1") == {"a": ((2, 3),) * 3, "b": ((1, 1), (2, 1), (4, 1))}
    with pytest.raises(serve.ServeError, match="one shape or three"):
        serve.parse_profile("x:1x4,2x4")
    with pytest.raises(serve.ServeError, match="shapes are like"):
        serve.parse_profile("x:1xq")


def make_repo(tmp_path, layout):
    for rel, content in layout.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return str(tmp_path)


def test_repository_serves_the_latest_version_with_its_settings(tmp_path):
    repo = make_repo(tmp_path, {
        "a/1/model.plan": b"old", "a/3/model.plan": b"new", "a/kiln.json": json.dumps(
            {"instances": 2, "max_queue_delay_us": 500, "devices": [0, 1]}).encode(),
        "b/1/model.onnx": b"onnx", "b/kiln.json": json.dumps({"profile": {"x": [[1, 4], [2, 4], [8, 4]]}}).encode(),
    })
    a, b = serve.repository_specs(repo)
    assert (a.name, a.version, os.path.basename(a.path), a.instances, a.max_queue_delay_us, a.devices) == \
        ("a", 3, "model.plan", 2, 500, [0, 1])
    assert a.path.endswith(os.path.join("a", "3", "model.plan"))
    assert (b.name, b.version, b.profile) == ("b", 1, {"x": ((1, 4), (2, 4), (8, 4))})
    # command-line defaults fill what kiln.json leaves out
    args = serve.parse_args(["--model-repository", repo, "--instances=4", "--max-queue-size=7"])
    a, b = serve.specs_from_args(args)
    assert (a.instances, a.max_queue_size, b.instances, b.max_queue_size) == (2, 7, 4, 7)


@pytest.mark.parametrize("layout,message", [
    ({"a/model.plan": b"x"}, "no numeric version folder"),
    ({"a/1/model.plan": b"x", "a/1/model.onnx": b"y"}, "exactly one of"),
    ({"a/1/model.plan": b"x", "a/config.pbtxt": b"name: 'a'"}, "does not read Triton's config.pbtxt"),
    ({"a/1/model.plan": b"x", "a/kiln.json": b"{\"instance\": 2}"}, "unknown key"),
    ({"a/1/model.plan": b"x", "a/kiln.json": b"{"}, "not valid JSON"),
])
def test_repository_errors(tmp_path, layout, message):
    with pytest.raises(serve.ServeError, match=message):
        serve.repository_specs(make_repo(tmp_path, layout))


def test_argument_errors():
    with pytest.raises(serve.ServeError, match="one of the two"):
        serve.specs_from_args(serve.parse_args([]))
    with pytest.raises(serve.ServeError, match="expected an engine"):
        serve.specs_from_args(serve.parse_args(["model.txt"]))
    with pytest.raises(serve.ServeError, match="repeat"):
        serve.specs_from_args(serve.parse_args(["a/m.engine", "b/m.engine"]))
    with pytest.raises(serve.ServeError, match="--name given 1 time"):
        serve.specs_from_args(serve.parse_args(["a.engine", "b.engine", "--name=x"]))
    with pytest.raises(serve.ServeError, match="kiln.json"):
        serve.specs_from_args(serve.parse_args(["--model-repository=r", "--fp16"]))


def test_devices_without_cuda_are_refused():
    from kiln import _kiln
    if _kiln._cuda_device_count() > 0:
        pytest.skip("this machine has CUDA devices")
    spec = serve.ModelSpec(name="m", path="m.engine", devices=[0])
    with pytest.raises(serve.ServeError, match="needs CUDA devices; this machine has none"):
        serve.prepare(spec, "auto", print)
