"""The Podman runtime's pure parts, without Podman: spec translation, status mapping, the
CRI log format, the busybox rootfs and the runtime's configuration."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from arktos.agent import crilog
from arktos.agent.busybox import rootfs_tar
from arktos.agent.podman import containers_conf, pull_error, socket_path
from arktos.agent.podmanspec import (
    LABEL_ATTEMPT,
    LABEL_CONTAINER,
    LABEL_UID,
    archive_path,
    container_name,
    create_request,
    local_dirs,
    pod_request,
    pull_policy,
    volume_host_path,
)
from arktos.agent.podmanstatus import instance_state, iso_time, pod_states, unix_time
from arktos.agent.runtime import Obj, RuntimeFailure

ROOT = Path("/r")


def pod(**container: object) -> Obj:
    c = {"name": "c", "image": "localhost/busybox:latest", **container}
    return {"metadata": {"name": "web", "namespace": "ns", "tenant": "t", "uid": "u1"},
            "spec": {"initContainers": [{"name": "init", "image": "x:1"}], "containers": [c],
                     "volumes": [{"name": "e", "emptyDir": {}},
                                 {"name": "h", "hostPath": {"path": "/srv/h",
                                                            "type": "DirectoryOrCreate"}},
                                 {"name": "s", "secret": {"secretName": "s"}}]}}


def test_command_and_args_follow_kubernetes() -> None:
    both = create_request(pod(command=["sh"], args=["-c", "x"]), "c", 2, root=ROOT, image="i")
    assert (both["entrypoint"], both["command"]) == (["sh"], ["-c", "x"])
    only_args = create_request(pod(args=["a"]), "c", 0, root=ROOT, image="i")
    assert "entrypoint" not in only_args and only_args["command"] == ["a"]
    only_command = create_request(pod(command=["b"]), "c", 0, root=ROOT, image="i")
    assert only_command["entrypoint"] == ["b"] and "command" not in only_command
    neither = create_request(pod(), "c", 0, root=ROOT, image="i")
    assert "entrypoint" not in neither and "command" not in neither


def test_create_request_names_labels_logs_env_limits() -> None:
    p = pod(env=[{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {}}],
            workingDir="/w", resources={"limits": {"cpu": "250m", "memory": "64Mi"},
                                        "requests": {"cpu": "100m"}},
            securityContext={"runAsUser": 1000, "runAsGroup": 10})
    req = create_request(p, "c", 3, root=ROOT, image="img")
    assert req["name"] == container_name("u1", "c", 3) == "u1_c_3"
    assert req["pod"] == "arktos-u1" and req["image"] == "img"
    assert req["labels"][LABEL_UID] == "u1" and req["labels"][LABEL_ATTEMPT] == "3"
    assert req["labels"]["arktos.io/pod-tenant"] == "t"
    assert req["log_configuration"] == {"driver": "k8s-file", "path": "/r/pods/u1/logs/c_3.log"}
    assert req["env"] == {"A": "1"} and req["work_dir"] == "/w" and req["user"] == "1000:10"
    assert req["resource_limits"] == {"memory": {"limit": 64 * 2**20},
                                      "cpu": {"quota": 25000, "period": 100000, "shares": 102}}
    init = create_request(p, "init", 0, root=ROOT, image="x:1")
    assert init["labels"][LABEL_CONTAINER] == "init"
    with pytest.raises(RuntimeFailure) as err:
        create_request(p, "nope", 0, root=ROOT, image="x")
    assert err.value.reason == "CreateContainerError"


def test_volumes_resolve_to_host_paths() -> None:
    p = pod(volumeMounts=[{"name": "e", "mountPath": "/e"},
                          {"name": "h", "mountPath": "/h", "readOnly": True},
                          {"name": "s", "mountPath": "/s", "subPath": "key"}])
    mounts = create_request(p, "c", 0, root=ROOT, image="i")["mounts"]
    assert [(m["destination"], m["source"], m["options"]) for m in mounts] == [
        ("/e", "/r/pods/u1/volumes/e", ["rbind"]), ("/h", "/srv/h", ["rbind", "ro"]),
        ("/s", "/r/pods/u1/volumes/s/key", ["rbind"])]
    assert volume_host_path(ROOT, "u1", {"name": "c", "configMap": {}}) == Path(
        "/r/pods/u1/volumes/c")
    assert local_dirs(p, ROOT) == [Path("/r/pods/u1/logs"), Path("/r/pods/u1/volumes/e"),
                                   Path("/srv/h"), Path("/r/pods/u1/volumes/s")]
    sub = pod(volumeMounts=[{"name": "e", "mountPath": "/e", "subPath": "a/b"}])
    assert local_dirs(sub, ROOT)[-1] == Path("/r/pods/u1/volumes/e/a/b")
    with pytest.raises(RuntimeFailure):
        create_request(pod(volumeMounts=[{"name": "x", "mountPath": "/x"}]), "c", 0,
                       root=ROOT, image="i")


def test_pull_policy_archives_and_pod_request() -> None:
    assert pull_policy({"image": "busybox"}) == "Always"
    assert pull_policy({"image": "busybox:1.36"}) == "IfNotPresent"
    assert pull_policy({"image": "busybox:1", "imagePullPolicy": "Never"}) == "Never"
    assert archive_path("oci-archive:/x/y.tar") == "/x/y.tar"
    assert archive_path("docker-archive:/y.tar:name:tag") == "/y.tar"
    assert archive_path("docker.io/busybox") is None
    req = pod_request(pod(), ROOT)
    assert req["name"] == "arktos-u1" and req["hostname"] == "web"
    assert req["labels"]["arktos.io/runtime-root"] == "/r"


def entry(name: str, attempt: int, state: str = "exited", code: int = 0, **kw: object) -> Obj:
    return {"Id": f"{name}{attempt}", "Image": "img", "State": state, "ExitCode": code,
            "StartedAt": 1700000000, "ExitedAt": 1700000005, "Created": "2023-11-14T22:13:20Z",
            "Labels": {LABEL_UID: "u1", LABEL_CONTAINER: name, LABEL_ATTEMPT: str(attempt)},
            **kw}


def test_status_mapping() -> None:
    infra = {"Id": "inf", "IsInfra": True, "State": "running",
             "Created": "2023-11-14T22:13:20.123456789Z", "Labels": {LABEL_UID: "u1"}}
    entries = [infra, entry("a", 0, code=3), entry("a", 1, "running"), entry("a", 2, "created", StartedAt=-62135596800),
               entry("b", 0, code=137), {"Id": "stray", "Labels": {}}]
    [rs] = pod_states(entries, {"inf": "10.88.0.5"}, oom_killed=lambda cid: cid == "b0")
    assert rs.uid == "u1" and rs.ip == "10.88.0.5"
    assert rs.started_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    a, b = rs.container("a"), rs.container("b")
    assert a is not None and (a.state, a.restart_count, a.started_at) == ("waiting", 2, None)
    assert b is not None and (b.state, b.exit_code, b.reason) == ("terminated", 137, "OOMKilled")
    assert [(p.name, p.state, p.restart_count) for p in rs.previous] == [("a", "running", 1)]
    done = instance_state(entry("c", 4, code=0))
    assert (done.reason, done.container_id, done.finished_at) == (
        "Completed", "podman://c4", datetime.fromtimestamp(1700000005, UTC))
    assert instance_state(entry("c", 0, code=1)).reason == "Error"
    assert unix_time(-62135596800) is None and iso_time("0001-01-01T00:00:00Z") is None


def test_cri_log_decoding() -> None:
    log = (b"2024-01-01T00:00:00.1+00:00 stdout F hello\n"
           b"2024-01-01T00:00:00.2+00:00 stderr P par\n"
           b"2024-01-01T00:00:00.3+00:00 stdout F tial\n"
           b"2024-01-01T00:00:00.4+00:00 stdout F \n"
           b"2024-01-01T00:00:00.5+00:00 stdout P end")
    assert crilog.decode(log) == b"hello\npartial\n\n"
    decoder = crilog.CriLogDecoder()
    pieces = [decoder.feed(log[i:i + 7]) for i in range(0, len(log), 7)]
    assert b"".join(pieces) == b"hello\npartial\n\n"
    assert decoder.feed(b"\n") == b"end"
    assert crilog.tail(b"a\nb\nc", 2) == b"b\nc" and crilog.tail(b"a\n", 0) == b""
    assert crilog.tail(b"a\nb\n", None) == b"a\nb\n"


def test_busybox_rootfs() -> None:
    data = rootfs_tar(b"ELF", ["bin/sh", "usr/bin/nc", "bin/busybox"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
        assert members["usr/bin/nc"].issym() and members["bin/busybox"].isfile()
        assert members["tmp"].mode == 0o1777 and "etc/passwd" in members


def test_runtime_configuration() -> None:
    conf = containers_conf(20000, 32768)
    assert 'runtime = "runc"' in conf and 'cgroup_manager = "cgroupfs"' in conf
    assert '"nofile=20000:20000", "nproc=32768:32768"' in conf
    assert socket_path(Path("/x")) == Path("/x/podman.sock")
    long = socket_path(Path("/" + "d" * 120))
    assert long.name.startswith("arktos-podman-") and len(str(long)) < 100
    assert pull_error(b'{"stream":"Trying"}\n{"error":"no such host"}\n') == "no such host"
    assert pull_error({"error": "denied"}) == "denied" and pull_error(b'{"id":"x"}') == ""
