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
