"""The kube log follower tells the kubelet's not-ready answer from a dyno's output."""

from spruce.dynos.backends.kubernetes.watch import _kubelet_not_ready


def test_kubelet_errors_are_not_dyno_output() -> None:
    assert _kubelet_not_ready(
        'failed to try resolving symlinks in path "/var/log/pods/t-1_app-run-1_uid/dyno/0.log":'
        " lstat /var/log/pods/t-1_app-run-1_uid: no such file or directory"
    )
    assert _kubelet_not_ready("unable to retrieve container logs for containerd://abc")
    assert not _kubelet_not_ready("hi from run.1, hello")
    assert not _kubelet_not_ready('app says: failed to try resolving symlinks in path "/x"')


class _Kube:
    """Stands in for the apiserver's log endpoint: each open gives the next answer."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers
        self.opened = 0

    def follow_log(self, pod: str, container: str, since: object, previous: bool) -> list[str]:
        self.opened += 1
        return self.answers.pop(0) if self.answers else []


async def test_a_stream_that_ended_empty_is_read_again_whole() -> None:
    import asyncio

    from spruce.dynos.backends.kubernetes.watch import LogFollower

    # first open: the container had not written yet (an empty stream); second: all of it
    kube = _Kube([[], ["migrating", "done"]])
    follower = LogFollower(kube, asyncio.get_running_loop())  # type: ignore[arg-type]
    got: list[str] = []
    key = ("uid-1", 0)
    follower.follow(key, "pod-1", got.append)
    await follower.drained(key, 5)
    assert got == [] and follower.ended_empty(key)
    follower.reopen(key)
    follower.follow(key, "pod-1", got.append)
    await follower.drained(key, 5)
    assert got == ["migrating", "done"] and kube.opened == 2
    # a stream that delivered lines is never read twice (no line twice)
    follower.reopen(key)
    follower.follow(key, "pod-1", got.append)
    await follower.drained(key, 5)
    assert got == ["migrating", "done"] and kube.opened == 2
