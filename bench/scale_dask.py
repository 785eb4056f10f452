"""A Dask LocalCluster for the scale benchmark's ``--engine dask``, as a coordinator reaches one.

The cluster speaks TLS only, with certificates from a throwaway CA, and the
coordinator's own engine (``coordinator.parallel.DaskEngine``) talks to it:
the same path a coordinator configured with ``dask_scheduler`` takes, on this
machine. Its workers are processes with one thread each, like the local pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coordinator.parallel import DaskEngine, DaskSettings
from hublink import pki
from hublink.identity import Identity, Role


@contextmanager
def local_cluster(folder: Path, workers: int) -> Iterator[DaskEngine]:
    """An engine on a TLS LocalCluster of ``workers`` worker processes, closed afterwards."""
    import distributed

    authority = pki.create_authority(folder / "ca", name="bench dask CA")
    cluster_cert = pki.issue_certificate(
        authority, Identity("dask-cluster", Role.COORDINATOR), folder / "cluster"
    )
    client_cert = pki.issue_certificate(
        authority, Identity("coordinator", Role.COORDINATOR), folder / "client"
    )
    security = distributed.security.Security(  # type: ignore[no-untyped-call]
        tls_ca_file=str(authority.ca),
        tls_scheduler_cert=str(cluster_cert.cert),
        tls_scheduler_key=str(cluster_cert.key),
        tls_worker_cert=str(cluster_cert.cert),
        tls_worker_key=str(cluster_cert.key),
        tls_client_cert=str(client_cert.cert),
        tls_client_key=str(client_cert.key),
        require_encryption=True,
    )
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        protocol="tls://",
        host="127.0.0.1",
        security=security,
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield DaskEngine(
            DaskSettings(
                cluster.scheduler_address,
                ca=authority.ca,
                cert=client_cert.cert,
                key=client_cert.key,
            )
        )
    finally:
        cluster.close()
