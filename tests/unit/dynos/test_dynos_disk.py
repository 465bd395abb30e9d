"""The dyno disk quota rule and the command line that makes the disk."""

from __future__ import annotations

from pathlib import Path

from spruce.dynos.disk import DynoDisks, disk_quota_mb


def test_disk_is_four_times_memory_within_bounds() -> None:
    assert disk_quota_mb("standard-1x") == 2048  # 512 MB x 4 = 2 GB: the floor
    assert disk_quota_mb("Standard-2X") == 4096
    assert disk_quota_mb("performance-m") == 10240
    assert disk_quota_mb("performance-l") == 57344
    assert disk_quota_mb("performance-xl") == 65536  # the cap


def test_overrides_by_size_name_either_spelling() -> None:
    assert disk_quota_mb("basic", {"basic": 64}) == 64
    assert disk_quota_mb("basic", {"Basic": 32}) == 32
    assert disk_quota_mb("standard-1x", {"basic": 64}) == 2048


def test_wrapper_runs_the_command_after_mounting(tmp_path: Path) -> None:
    disks = DynoDisks(tmp_path / "disks")
    argv = disks.wrap(["/bin/true"], disks.mount_dir("launch-1"), tmp_path / "slug", 64)
    assert argv[1:5] == ["--mount", "--propagation", "private", "--"]
    assert argv[-2:] == ["--", "/bin/true"]
    image, mount, lower, size = argv[9:13]
    assert Path(image).name == ".launch-1.img" and Path(mount).name == "launch-1"
    assert lower == str(tmp_path / "slug") and size == str(64 << 20)
    # Tools by absolute path: the dyno's own PATH (config vars) must not pick them.
    assert "\nmkfs.ext4 " not in disks.script and "/mkfs.ext4" in disks.script
