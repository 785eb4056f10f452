"""``hublink pki``: a pilot certificate authority: create it, issue and revoke certificates."""

from __future__ import annotations

from pathlib import Path

import click

from hublink.cli.errors import CouldNotRun, friendly
from hublink.identity import Identity, Role


@click.group("pki")
def group() -> None:
    """A pilot certificate authority (production organisations use their own CAs)."""


@group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="hublink pilot CA", show_default=True, help="CA common name.")
@friendly
def pki_init(directory: Path, name: str) -> None:
    """Create a certificate authority in DIRECTORY (ca.pem, and ca.key readable by owner only)."""
    from hublink.pki import create_authority

    files = create_authority(directory, name=name)
    click.echo(f"created {files.cert} and {files.key}")


@group.command("issue")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--organisation", required=True, help="Organisation slug, e.g. health-visiting.")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="What the holder may do.",
)
@click.option(
    "--dns",
    "dns_names",
    multiple=True,
    default=["localhost"],
    show_default=True,
    help="DNS name for the certificate (repeatable).",
)
@click.option(
    "--ip",
    "ip_addresses",
    multiple=True,
    default=["127.0.0.1"],
    show_default=True,
    help="IP address for the certificate (repeatable).",
)
@click.option(
    "--days", default=825, show_default=True, type=click.IntRange(1, 3650), help="Validity in days."
)
@friendly
def pki_issue(
    directory: Path,
    organisation: str,
    role: str,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    days: int,
) -> None:
    """Issue a certificate naming ORGANISATION in ROLE, signed by the CA in DIRECTORY."""
    from hublink.pki import issue_certificate, load_authority

    authority = load_authority(directory)
    files = issue_certificate(
        authority,
        Identity(organisation, Role(role)),
        directory,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        days=days,
    )
    from cryptography import x509

    from hublink.identity import fingerprint

    pinned = fingerprint(x509.load_pem_x509_certificate(files.cert.read_bytes()))
    click.echo(f"issued {files.cert} (key {files.key}); fingerprint sha256:{pinned}")


@group.command("revoke")
@click.argument("certificate", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--list",
    "deny_list",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's revocation list (its revocation_list setting).",
)
@click.option("--reason", default="", help="A note kept beside the entry.")
@friendly
def pki_revoke(certificate: Path, deny_list: Path, reason: str) -> None:
    """Add CERTIFICATE to a revocation list; a running coordinator refuses it at once."""
    from cryptography import x509

    from hublink.identity import fingerprint, identity_from_certificate

    pem = certificate.read_bytes()
    try:
        parsed = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CouldNotRun(f"{certificate}: not a PEM certificate") from None
    who = identity_from_certificate(pem)
    note = f"  # {who}" + (f": {reason}" if reason else "")
    with deny_list.open("a", encoding="utf-8") as handle:
        handle.write(f"sha256:{fingerprint(parsed)}{note}\n")
    click.echo(f"revoked the certificate of {who} in {deny_list}")
