"""The QEMU runtime's pure parts: the VM spec and command line, cloud-init seed content, the
VM record's transitions, address candidates."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arktos.agent import cloudinit, vmnet, vmspec, vmstate
from arktos.agent.runtime import Obj, RuntimeFailure
from arktos.agent.vmstate import VmRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pod(**vm: object) -> Obj:
    return {"metadata": {"name": "p", "uid": "u1"},
            "spec": {"virtualMachine": {"name": "vm", "image": "tinyvm", **vm}}}


def test_parse_vm_defaults_and_resources() -> None:
    spec = vmspec.parse_vm(pod())
    assert (spec.name, spec.image, spec.cpus, spec.memory_mib, spec.user_data, spec.power) == (
        "vm", "tinyvm", 1, 128, b"", "Running")
    spec = vmspec.parse_vm(pod(resources={"requests": {"cpu": "1500m", "memory": "1Gi"}},
                               userData=base64.b64encode(b"#!/bin/sh\n").decode(),
                               publicKey="ssh-ed25519 AAAA k", powerSpec="Paused"))
    assert (spec.cpus, spec.memory_mib, spec.user_data, spec.public_keys, spec.power) == (
        2, 1024, b"#!/bin/sh\n", ("ssh-ed25519 AAAA k",), "Paused")
    limits = {"limits": {"cpu": "500m", "memory": "100M"}, "requests": {"cpu": "4"}}
    spec = vmspec.parse_vm(pod(resources=limits))
    assert (spec.cpus, spec.memory_mib) == (1, 96)  # limits win; 100 MB = 95.4 MiB, rounded up
    assert vmspec.parse_vm(pod(resources={"limits": {"memory": "1Mi"}})).memory_mib == 32


@pytest.mark.parametrize("bad", [{"userData": "not base64!"},
                                 {"resources": {"limits": {"cpu": "lots"}}}])
def test_parse_vm_rejects_malformed_specs(bad: Obj) -> None:
    with pytest.raises(RuntimeFailure) as e:
        vmspec.parse_vm(pod(**bad))
    assert e.value.reason == "CreateContainerError"
    with pytest.raises(RuntimeFailure):
        vmspec.parse_vm({"metadata": {}, "spec": {"containers": []}})


def test_image_dir_names() -> None:
    images = Path("/images")
    assert vmspec.image_dir(images, "tinyvm") == images / "tinyvm"
    assert vmspec.image_dir(images, "tinyvm:latest") == images / "tinyvm"
    assert vmspec.image_dir(images, "cirros:0.5") == images / "cirros:0.5"
    for bad in ("", "../etc", "a/b", ".hidden", "a..b"):
        with pytest.raises(RuntimeFailure) as e:
            vmspec.image_dir(images, bad)
        assert e.value.reason == "ImageNotFound"


def test_tap_and_mac_are_stable_and_valid() -> None:
    assert vmspec.tap_name("u1") == vmspec.tap_name("u1") != vmspec.tap_name("u2")
    assert len(vmspec.tap_name("u1")) <= 15
    mac = vmspec.mac_address("u1")
    assert mac.startswith("52:54:00:") and len(mac.split(":")) == 6


def boot(**kw: object) -> vmspec.Boot:
    base = vmspec.Boot(vm_dir=Path("/r/vms/u1"), image_dir=Path("/i/tinyvm"),
                       qmp=Path("/r/vms/u1/qmp.sock"), console=Path("/r/vms/u1/console.sock"),
                       accel="tcg", kernel=True, tap="akvm1", mac="52:54:00:01:02:03",
                       ip="10.89.0.7", gateway="10.89.0.1", prefix=16)
    return replace(base, **kw)


def test_kernel_cmdline() -> None:
    assert vmspec.kernel_cmdline(boot(), "quiet") == (
        "console=ttyS0 quiet arktos.ip=10.89.0.7/16 arktos.gw=10.89.0.1")
    assert vmspec.kernel_cmdline(boot(ip="", gateway=""), "") == "console=ttyS0"


def test_qemu_argv_kernel_boot() -> None:
    spec = vmspec.VmSpec(name="vm", image="tinyvm", cpus=2, memory_mib=256)
    argv = vmspec.qemu_argv(spec, boot(cmdline="console=ttyS0"), Path("/r/pid"), Path("/r/log"))
    joined = " ".join(argv)
    assert argv[0] == vmspec.QEMU
    assert argv[argv.index("-smp") + 1] == "2" and argv[argv.index("-m") + 1] == "256"
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-kernel") + 1] == "/i/tinyvm/kernel"
    assert argv[argv.index("-append") + 1] == "console=ttyS0"
    assert "file=/r/vms/u1/disk.qcow2,if=virtio,format=qcow2" in joined
    assert "file=/r/vms/u1/seed.iso,if=virtio,format=raw,readonly=on" in joined
    assert "tap,id=net0,ifname=akvm1,script=no,downscript=no" in joined
    assert "logfile=/r/log" in joined and "unix:/r/vms/u1/qmp.sock,server=on" in joined
    for flag in ("-daemonize", "-no-shutdown", "-nodefaults"):
        assert flag in argv


def test_qemu_argv_escapes_commas() -> None:
    spec = vmspec.VmSpec(name="vm,evil=1", image="tinyvm")
    argv = vmspec.qemu_argv(spec, boot(vm_dir=Path("/r,x")), Path("/p"), Path("/l"))
    assert argv[argv.index("-name") + 1] == "vm,,evil=1,debug-threads=off"
    assert "file=/r,,x/disk.qcow2,if=virtio,format=qcow2,id=disk0" in argv


def test_qemu_argv_disk_boot_with_user_networking() -> None:
    spec = vmspec.VmSpec(name="vm", image="cirros")
    argv = vmspec.qemu_argv(spec, boot(kernel=False, tap=""), Path("/p"), Path("/l"))
    assert "-kernel" not in argv and "-append" not in argv
    assert "user,id=net0" in argv


def test_seed_files() -> None:
    files = cloudinit.seed_files("u1", "My_VM.1", b"#cloud-config\n", ("ssh-rsa AAA x",),
                                 "52:54:00:01:02:03", "10.89.0.7", 16, "10.89.0.1")
    assert files["user-data"] == b"#cloud-config\n"
    assert files["meta-data"].decode() == (
        'instance-id: "u1"\nlocal-hostname: my-vm-1\npublic-keys:\n  - "ssh-rsa AAA x"\n')
    net = files["network-config"].decode()
    assert 'macaddress: "52:54:00:01:02:03"' in net and '"10.89.0.7/16"' in net
    assert "via: \"10.89.0.1\"" in net
    assert "dhcp4: true" in cloudinit.network_config("m", "", 16, "")
    assert cloudinit.hostname("---") == "vm"


def rec(**kw: object) -> VmRecord:
    base = VmRecord(uid="u1", pod_name="p", name="vm", image="tinyvm",
                    created_at=T0.isoformat(), ip="10.89.0.7")
    return replace(base, **kw)


def test_record_lifecycle() -> None:
    r = rec()
    assert vmstate.pod_status(r).vm is None
    r = vmstate.booted(r, 42, T0, attempt=0)
    vm = vmstate.vm_state(r)
    assert (vm.state, vm.restart_count, vm.power_state, vm.container_id) == (
        "running", 0, "Running", "qemu://u1/vm")
    r = vmstate.observe(r, True, "paused", T0)
    assert r.power == "Paused"
    r = vmstate.observe(r, True, "running", T0)
    r = vmstate.observe(r, True, "shutdown", T0 + timedelta(seconds=5))
    assert (r.state, r.exit_code, r.reason, r.pid) == ("terminated", 0, "Completed", 0)
    r = vmstate.booted(r, 43, T0, attempt=1)
    status = vmstate.pod_status(r)
    assert status.vm is not None and status.vm.restart_count == 1
    assert [(p.state, p.restart_count, p.reason) for p in status.previous] == [
        ("terminated", 0, "Completed")]
    crashed = vmstate.observe(r, False, None, T0)
    assert (crashed.reason, crashed.exit_code) == ("Error", 1)
    assert vmstate.observe(r, True, "guest-panicked", T0).reason == "Error"
    assert vmstate.observe(r, True, None, T0) == r


def test_record_resets_power_on_and_snapshots() -> None:
    r = vmstate.booted(rec(), 42, T0, attempt=2)
    r = VmRecord(**{**r.to_json(), "resets": 3, "snapshots": ("a",)})
    assert vmstate.vm_state(r).restart_count == 5
    off = vmstate.ended(r, T0, 0, "Completed", "powered off", "Shutdown")
    assert off.power == "Shutdown"
    on = vmstate.booted(off, 44, T0, attempt=None)  # powered on again: same instance
    assert (on.attempt, on.resets, on.power, on.previous) == (2, 3, "Running", {})
    fresh = vmstate.booted(on, 45, T0, attempt=6)
    assert (fresh.attempt, fresh.resets) == (6, 0)
    r = vmstate.snapshot_added(vmstate.snapshot_added(r, "b"), "a")
    assert r.snapshots == ("b", "a")
    assert VmRecord.from_json(r.to_json() | {"unknown": 1}) == r


def test_address_candidates() -> None:
    net = ipaddress.IPv4Network("10.89.0.0/29")
    first = vmnet.candidates("u1", net)
    assert sorted(first) == [f"10.89.0.{i}" for i in range(2, 7)]
    assert vmnet.candidates("u1", net) == first
    assert vmnet.Subnet().gateway == "10.89.0.1" and vmnet.Subnet().prefix == 16


def test_leases_are_exclusive(tmp_path: Path) -> None:
    subnet = vmnet.Subnet(cidr="10.89.0.0/29", leases_dir=tmp_path)
    ips = [vmnet.lease(subnet, f"u{i}") for i in range(5)]
    assert len(set(ips)) == 5 and vmnet.lease(subnet, "u3") == ips[3]
    with pytest.raises(RuntimeFailure):
        vmnet.lease(subnet, "u9")
    vmnet.release(subnet, ips[0], "someone-else")
    assert (tmp_path / ips[0]).exists()
    vmnet.release(subnet, ips[0], "u0")
    assert vmnet.lease(subnet, "u9") == ips[0]
