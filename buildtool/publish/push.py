"""`buildtool publish`: push verified images to the site's registry, record the release.

Per selected image, in `<registry>/<namespace>/<image name>`:
  - immutable tags: the dated release tag (tags.release, e.g. 20261123.v2) and the content-hash
    tag (h-<hash20>, the node's local tag);
  - moving tags (tags.moving, e.g. latest), pushed only after every image's immutable tags
    were pushed, so a failed run never leaves `latest` pointing into a half-published release.

Only images whose newest verify record (reports/<run>/summary.json, written by `buildtool
verify`) for their content-hash tag passed are published; `--verify` first checks those that
have none. The release number N of a date is one more than any release of that date in the
release record or among the selected repositories' tags in the registry; a run that failed
midway is resumed (same release tag) by the next run with unchanged content
(.state/publish-pending-<registry>_<namespace>.json).

Pushes go through the docker SDK; the push stream is read line by line and any
error/errorDetail fails that image (buildtool.engine.registry_transfer.read_push_stream). The digest of each
image comes from the stream's final aux record. The release record, package manifests and
release notes (apt and pip packages added/removed/changed since the image's previous
release) are written under releases/ (buildtool.publish.release) — commit them.
Registry settings, CA and credentials (environment or Docker config, never printed): buildtool.edges.registry.Registry.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from ..config.model import Config
from ..edges.git import git_revision
from ..edges.registry import Credentials, Registry, RegistryClient, RegistryError
from ..engine.client import docker_client
from ..engine.registry_transfer import PushResult, engine_login, push_image
from ..errors import OperationError, UserError
from ..render.generate import Generated
from .index import platform_images, record_platforms
from .multi import index_moving, inspect_platforms, platform_problems, push_platforms
from .plan import (
    ImagePlan,
    Options,
    PublishedImage,
    PublishPlan,
    choose_release,
    image_plans,
    pending_path,
    plan_json,
    render_plan,
    utc_date,
    verification_problems,
    verify_records,
)
from .release import (
    MANIFEST_SCRIPT,
    ImageNotes,
    Manifest,
    ReleaseFiles,
    add_release,
    components_from_labels,
    parse_manifest_output,
    previous_entry,
    read_manifest,
    render_notes,
    write_json,
    write_text,
)
from .reporter import Reporter

EXIT_OK, EXIT_FAILED = 0, 1
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Hooks:
    """Test seams: called between steps of a real publish."""

    after_image: Callable[[ImagePlan, list[PushResult]], None] | None = None  # after an image's immutable tags
    attest: Callable[[ImagePlan, str], dict[str, Any]] | None = None  # stands in for the real attestation step


# Output -----------------------------------------------------------------------------------------------------------


# The engine side -----------------------------------------------------------------------------------------------


def inspect_images(client: Any, plans: list[ImagePlan]) -> list[str]:
    """Fills image_id and components from the local images; returns the images that are not built."""
    from docker.errors import ImageNotFound, NotFound

    missing = []
    for p in plans:
        try:
            attrs = client.api.inspect_image(p.local_tag)
        except (ImageNotFound, NotFound):
            missing.append(f"{p.image} ({p.local_tag})")
            continue
        p.image_id = attrs["Id"]
        p.components = components_from_labels((attrs.get("Config") or {}).get("Labels") or {})
    return missing


def collect_manifest(client: Any, p: ImagePlan) -> Manifest:
    """apt (dpkg-query -W) and pip (pip list --format json) packages of the image: one container, one shell."""
    from docker.errors import APIError, ContainerError

    env = {"BT_PYTHON": f"{p.python_bin.rstrip('/')}/python" if p.python_bin else ""}
    try:
        raw = client.containers.run(p.image_id, command=["-c", MANIFEST_SCRIPT], entrypoint=["/bin/sh"], environment=env,
                                    network_disabled=True, remove=True, stdout=True, stderr=False)
    except (APIError, ContainerError) as exc:
        raise OperationError(f"cannot list the packages of {p.image} ({p.local_tag}): {str(exc).splitlines()[0]}") from None
    return parse_manifest_output(raw.decode("utf-8", errors="replace"))


def untag(client: Any, refs: list[str]) -> None:
    from docker.errors import APIError

    for ref in refs:
        try:
            client.api.remove_image(ref, force=False, noprune=True)
        except APIError:
            pass


# The command --------------------------------------------------------------------------------------------------------


def publish(config: Config, g: Generated, chosen: list, opts: Options, *, env: dict[str, str] | None = None, out: TextIO | None = None,
            hooks: Hooks | None = None, client: Any = None, registry_client: Any = None) -> int:
    """Publish `chosen` (variants). Returns the exit code; raises OperationError (one line, secrets masked).

    `client` (a docker SDK client) and `registry_client` (a RegistryClient) are for tests.
    """
    out = out or sys.stdout
    hooks = hooks or Hooks()
    site = config.site
    registry, namespace = site.registry, site.namespace
    if not chosen:
        raise OperationError("no images selected (check --group and --filter)")
    date = opts.date or utc_date()
    if not (len(date) == 8 and date.isdigit()):
        raise UserError("the release date must be YYYYMMDD", key="--date", expected="e.g. 20261123", found=date)
    plans = image_plans(config, g, chosen)
    for p in plans:
        images = platform_images(g, p.image, (p.node, p.local_tag, p.content_hash), opts.platforms)
        p.platforms = images if len(images) > 1 else []
    settings = Registry.from_site(site, env=env)
    creds = settings.creds
    started = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    reporter = Reporter(opts.output_format, out, None if opts.dry_run else opts.logs / f"publish-{started}.log", creds)

    client = client or docker_client()
    missing = inspect_images(client, plans) + inspect_platforms(client, plans)
    if missing:
        raise OperationError(f"{len(missing)} selected images are not built: {', '.join(missing)}; run `buildtool build` first")

    records = verify_records(opts.reports)
    problems = verification_problems(plans, records) + platform_problems(plans, records)
    if problems and opts.verify and not opts.dry_run:
        _run_verify(config, g, [p for p in plans if p.verified.startswith(("never", "failed"))], opts, reporter)
        problems = verification_problems(plans, verify_records(opts.reports)) + platform_problems(plans, verify_records(opts.reports))
    if problems and not opts.dry_run:
        raise OperationError(f"{len(problems)} selected images have no passing verify record for their content hash: "
                             f"{'; '.join(problems)}. Run `buildtool verify` on them (or publish --verify)")

    files = ReleaseFiles(opts.releases, registry, namespace)
    record = files.load()
    pending_file = pending_path(opts.state, registry, namespace)
    pending = _read_json(pending_file)

    rc = registry_client or RegistryClient(settings)
    registry_tags: set[str] = set()
    note = ""
    try:
        rc.ping()
        for path in sorted({p.path for p in plans}):  # images may share a repository (tags.publish)
            registry_tags.update(rc.tags(path))
    except RegistryError as exc:
        if not opts.dry_run:
            raise
        note = f"registry not consulted ({exc}); N from the release record only"
    release, why = choose_release(config.tags.release, date, plans, record, registry_tags, pending)
    for p in plans:
        p.immutable = [p.release_tag(release)] if p.platforms else [p.release_tag(release), *p.immutable]  # an index: each platform's own tag is in p.platforms
    plan = PublishPlan(registry, namespace, date, release, why, plans, note)

    if opts.dry_run:
        if problems:
            plan.registry_note = (plan.registry_note + "; " if plan.registry_note else "") + "NOT publishable now: " + "; ".join(problems)
        if opts.output_format == "json":
            print(json.dumps({"dry_run": True, **plan_json(plan)}, indent=2, sort_keys=True), file=out)
        else:
            out.write(render_plan(plan))
            print(f"dry run: nothing pushed ({len(plans)} images, {sum(len(p.immutable) + len(p.moving) for p in plans)} tags)", file=out)
        return EXIT_OK if not problems else EXIT_FAILED

    reporter.open_log()
    try:
        attest = hooks.attest
        if attest is None and opts.attest:
            from .attest import make_attester

            attest = make_attester(config, g, opts.lock, opts.reports, client, rc, git_revision(REPO) or "unknown", plan.release)
        return _push_all(client, rc, plan, files, record, pending_file, creds, reporter, opts, hooks, out, attest)
    except OperationError as exc:
        reporter.log(f"error: {exc}")
        raise
    finally:
        reporter.close()


def _push_all(client: Any, rc: RegistryClient, plan: PublishPlan, files: ReleaseFiles, record: dict[str, Any], pending_file: Path,
              creds: Credentials | None, reporter: Reporter, opts: Options, hooks: Hooks, out: TextIO,
              attest: Callable[[ImagePlan, str], dict[str, Any]] | None = None) -> int:
    registry = plan.registry
    engine_login(client, registry, creds)
    reporter.say(f"publish {plan.release} ({plan.release_source}): {len(plan.images)} images to {registry}/{plan.namespace}"
                 + (f" as {creds.username} (credentials from {creds.source})" if creds else " (anonymous)"))

    # Package manifests first: a container that cannot list its packages stops the run before any push.
    manifests: dict[str, Manifest] = {}
    t0 = time.monotonic()
    for p in plan.images:
        prev = read_manifest(files.manifest(p.image))
        manifests[p.image] = prev[0] if prev and prev[1] == p.content_hash else collect_manifest(client, p)
    reporter.say(f"  package manifests of {len(plan.images)} images ({time.monotonic() - t0:.1f} s)")

    pending = {"release": plan.release, "date": plan.date, "registry": registry, "namespace": plan.namespace,
               "images": {p.image: p.content_hash for p in plan.images}}
    write_json(pending_file, pending)

    local_refs: list[str] = []
    published: dict[str, PublishedImage] = {}
    try:
        for i, p in enumerate(plan.images):
            t = time.monotonic()
            if p.platforms:  # each platform's image, then the index under the release tag
                published[p.image] = push_platforms(client, rc, p, plan, creds, reporter)
                reporter.say(f"  [{i + 1}/{len(plan.images)}] {p.repository}@{published[p.image].digest}: index over "
                             f"{', '.join(x.platform for x in p.platforms)} ({time.monotonic() - t:.1f} s)")
                local_refs.extend(f"{p.repository}:{x.local_tag.rsplit(':', 1)[-1]}" for x in p.platforms)
                continue
            results = []
            for tag in p.immutable:
                local_refs.append(f"{p.repository}:{tag}")
                try:
                    results.append(push_image(client, p.image_id, p.repository, tag, registry, creds, on_event=reporter.log))
                except RegistryError as exc:
                    done = ", ".join(published) or "none"
                    raise RegistryError(f"{exc}; no moving tag was updated; images with their immutable tags pushed: {done}; "
                                        f"rerun publish with the same selection to complete release {plan.release}") from None
            digests = {r.digest for r in results}
            if len(digests) != 1:
                raise RegistryError(f"registry {registry}: the tags of {p.repository} got different digests ({', '.join(sorted(digests))})")
            layers = {layer for r in results for layer in r.layers}
            pushed = {layer for r in results for layer, status in r.layers.items() if status == "Pushed"}
            published[p.image] = PublishedImage(p.image, p.repository, results[0].digest, list(p.immutable), [],
                                                len(pushed), len(layers - pushed), time.monotonic() - t)
            reporter.say(f"  [{i + 1}/{len(plan.images)}] {p.repository}@{results[0].digest}: {', '.join(p.immutable)} "
                         f"({published[p.image].layers_pushed} layers pushed, {published[p.image].layers_existing} already there, "
                         f"{published[p.image].seconds:.1f} s)")
            if hooks.after_image:
                hooks.after_image(p, results)

        # Every immutable tag is in: the SBOM and provenance of each digest (buildtool/publish/attest.py), then the moving tags.
        attestations: dict[str, dict[str, Any]] = {}
        for p in plan.images if attest else ():
            t = time.monotonic()
            attestations[p.image] = attest(p, published[p.image].digest)  # type: ignore[misc]
            a = attestations[p.image]
            reporter.say(f"  {p.repository}@{published[p.image].digest[:19]}: sbom {a['sbom']['digest'][:19]} ({a['sbom']['packages']} packages, "
                         f"{a['sbom']['size']} bytes), provenance {a['provenance']['digest'][:19]} ({time.monotonic() - t:.1f} s)")
        # Every immutable tag is in: now the moving tags.
        for p in plan.images:
            pub = published[p.image]
            for tag in p.moving:
                if p.platforms:
                    index_moving(rc, p, pub, tag)
                    continue
                local_refs.append(f"{p.repository}:{tag}")
                try:
                    r = push_image(client, p.image_id, p.repository, tag, registry, creds, on_event=reporter.log)
                except RegistryError as exc:
                    raise RegistryError(f"{exc}; every immutable tag of release {plan.release} is pushed but some moving tags "
                                        "were not updated; rerun publish to complete it") from None
                if r.digest != pub.digest:
                    raise RegistryError(f"registry {registry}: {p.repository}:{tag} got digest {r.digest}, expected {pub.digest}")
                pub.moving.append(tag)
        reporter.say(f"  moving tags: {', '.join(sorted({t for p in plan.images for t in p.moving}))} -> this release ({len(plan.images)} images)")
    finally:
        untag(client, local_refs)

    revision = git_revision(REPO) or "unknown"
    release_entry = _release_entry(plan, published, revision, manifests, attestations)
    pins = getattr(attest, "security_pins", None)
    notes = _notes(plan, published, record, files, manifests, revision, {p.image: pins(p.image) for p in plan.images} if pins else {})
    write_json(files.record, add_release(record, release_entry))
    for p in plan.images:
        write_json(files.manifest(p.image), {"image": p.image, "release": plan.release, "content_hash": p.content_hash,
                                             **manifests[p.image].to_json()})
    write_text(files.notes(plan.release), notes)
    pending_file.unlink(missing_ok=True)

    if opts.output_format == "json":
        print(json.dumps({"dry_run": False, **plan_json(plan), "published": [asdict(x) for x in published.values()],
                          "record": str(files.record), "notes": str(files.notes(plan.release))}, indent=2, sort_keys=True), file=out)
    else:
        print("", file=out)
        print(_table(list(published.values())), file=out)
        print(f"release {plan.release}: {len(published)} images in {registry}/{plan.namespace}; "
              f"record {files.record}, notes {files.notes(plan.release)} (commit them)", file=out)
    reporter.log(f"release {plan.release} complete")
    return EXIT_OK


def _release_entry(plan: PublishPlan, published: dict[str, PublishedImage], revision: str, manifests: dict[str, Manifest],
                   attestations: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    images = {}
    for p in plan.images:
        pub = published[p.image]
        images[p.image] = {"repository": p.repository, "digest": pub.digest, "tags": list(p.immutable), "moving": list(pub.moving),
                           "references": [f"{p.repository}:{t}" for t in [*p.immutable, *pub.moving]],
                           "node": p.node, "content_hash": p.content_hash, "components": p.components,
                           "packages": {"apt": len(manifests[p.image].apt), "pip": len(manifests[p.image].pip)}}
        if p.platforms:
            images[p.image]["platforms"] = record_platforms(p.platforms)
        if attestations and p.image in attestations:
            images[p.image]["attestations"] = attestations[p.image]
    return {"release": plan.release, "date": plan.date, "revision": revision, "images": dict(sorted(images.items()))}


def _notes(plan: PublishPlan, published: dict[str, PublishedImage], record: dict[str, Any], files: ReleaseFiles,
           manifests: dict[str, Manifest], revision: str, security: dict[str, dict[str, tuple[str, str]]] | None = None) -> str:
    items = []
    for p in plan.images:
        pub = published[p.image]
        prev = previous_entry(record, p.image)
        prev_manifest = None
        if prev is not None:
            stored = read_manifest(files.manifest(p.image))
            prev_manifest = stored[0] if stored else None
        items.append(ImageNotes(p.image, p.repository, pub.digest, [*p.immutable, *pub.moving], p.components, manifests[p.image],
                                previous_release=prev[0] if prev else None, previous_digest=prev[1].get("digest") if prev else None,
                                previous_components=prev[1].get("components") if prev else None, previous_manifest=prev_manifest,
                                security_pins=(security or {}).get(p.image, {})))
    return render_notes(plan.release, plan.registry, plan.namespace, revision, items)


def _table(rows: list[PublishedImage]) -> str:
    header = ["IMAGE", "DIGEST", "TAGS", "LAYERS PUSHED", "ALREADY THERE", "SECONDS"]
    table = [[r.image, r.digest[:19], ",".join([*r.tags, *r.moving]), str(r.layers_pushed), str(r.layers_existing), f"{r.seconds:.1f}"]
             for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    return "\n".join(lines)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run_verify(config: Config, g: Generated, plans: list[ImagePlan], opts: Options, reporter: Reporter) -> None:
    from ..verify.runner import build_plan, verify_plan

    names = [p.image for p in plans]
    reporter.say(f"verifying {len(names)} images first (no passing record for their content hash): {', '.join(names)}")
    verify_plan(build_plan(config, g, names), opts.reports, jobs=opts.jobs, output_format="json" if opts.output_format == "json" else "table",
                out=sys.stderr if opts.output_format == "json" else reporter.stream)
