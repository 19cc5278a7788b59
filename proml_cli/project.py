"""A proml project on disk: its policy, its ``.proml/`` state and the backends they select."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli.errors import InputError
from proml_cli.settings import Settings

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.ledger import ChainConfig, Kind, Ledger
    from proml_cli.policy import Policy

POLICY_NAME = "proml.yaml"
STATE_NAME = ".proml"
PROJECT_FILE = "project.json"


def find_policy(start: Path | None = None, explicit: str | None = None) -> Path:
    """The policy file: ``explicit`` (flag/``PROML_POLICY``), else ``proml.yaml`` here or above.

    Raises:
        InputError: no policy is found.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InputError(f"{explicit}: no such policy file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / POLICY_NAME
        if candidate.is_file():
            return candidate
    raise InputError(f"no {POLICY_NAME} here or in any parent directory", hint="proml init")


@dataclass(frozen=True)
class ProjectState:
    """What ``proml init`` recorded: where the project's ledger is."""

    backend: str
    chain_id: int
    ledger: str
    admin: str
    deployed_block: int

    def to_json(self) -> dict[str, Any]:
        """The state as written to ``.proml/project.json``."""
        return {
            "schema_version": 1,
            "backend": self.backend,
            "chain_id": self.chain_id,
            "ledger": self.ledger,
            "admin": self.admin,
            "deployed_block": self.deployed_block,
        }


@dataclass(frozen=True)
class Project:
    """A loaded project: the validated policy plus the state directory next to it."""

    policy: Policy
    state_dir: Path
    #: Told, in one line, which address signs whenever a signer is chosen (the CLI prints it).
    announce: Callable[[str], None] | None = None
    #: What the environment overrides, resolved once at the boundary.
    settings: Settings = field(default_factory=Settings)

    @property
    def root(self) -> Path:
        """The project's directory (the policy's directory)."""
        return self.policy.root

    def state(self) -> ProjectState:
        """The recorded ledger location.

        Raises:
            InputError: the project was never initialised.
        """
        path = self.state_dir / PROJECT_FILE
        if not path.exists():
            raise InputError(f"project not initialised ({path} is missing)", hint="proml init")
        return read_state(path)

    def write_state(self, state: ProjectState) -> None:
        """Write ``.proml/project.json`` atomically."""
        path = self.state_dir / PROJECT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    def chain_config(self) -> ChainConfig:
        """The policy's chain with what the settings override (``PROML_CHAIN_URL`` selects rpc)."""
        from dataclasses import replace

        chain = self.policy.chain
        return replace(
            chain,
            backend="rpc" if self.settings.chain_url else chain.backend,
            url=self.settings.chain_url or chain.url,
            state_dir=self.state_dir / "chain",
            lock_timeout=self.settings.lock_timeout,
            cache_dir=self.settings.cache_dir,
        )

    def chain_backend(self) -> str:
        """``embedded`` or ``rpc``: ``PROML_CHAIN_URL`` selects rpc over the policy."""
        return "rpc" if self.settings.chain_url else self.policy.chain.backend

    def chain_url(self) -> str | None:
        """The JSON-RPC URL: ``PROML_CHAIN_URL`` over ``chain.url``."""
        return self.settings.chain_url or self.policy.chain.url

    def signer(self, account: str | None = None) -> Any:
        """The signing account for this process (see :func:`proml_cli.account.select_signer`).

        The choice is announced (``signing as 0x… (account 'NAME')``) before anything is signed.
        """
        from proml_cli.account import select_signer

        choice = select_signer(
            self.state_dir, account, prompt=self.is_network(), settings=self.settings
        )
        if self.announce is not None:
            self.announce(choice.describe())
        return choice.account

    def is_network(self) -> bool:
        """Whether the chain is a network one (keys there deserve a password prompt)."""
        return self.chain_backend() == "rpc"

    @contextmanager
    def ledger(
        self,
        signer: Any = None,
        *,
        deploy: bool = False,
        attach: str | None = None,
        is_pinned: bool = True,
    ) -> Iterator[Ledger]:
        """Open the project's ledger, checked against the identity ``proml.lock`` pins.

        Read-only without ``signer``; ``deploy`` a new contract, or ``attach`` to an existing
        one by address (a second organisation joining); otherwise the recorded ledger. Whenever
        ``proml.lock`` exists, ``.proml/project.json`` and the chain must match it (see
        :mod:`proml_cli.identity`). Without a lock only ``init`` may open the ledger
        (``is_pinned=False``), to pin it.

        Raises:
            InputError: not initialised, no lock, or the ledger is not the pinned one.
        """
        from proml_cli import identity
        from proml_cli.ledger import open_ledger

        recorded = None if deploy or attach else self.state()
        lock = identity.read_lock(self.root)
        if recorded is not None:
            if lock is not None:
                identity.check_recorded(lock, chain_id=recorded.chain_id, ledger=recorded.ledger)
            elif is_pinned:
                raise InputError(
                    f"{identity.LOCK_NAME} is missing beside {self.policy.source}: the ledger's "
                    "identity is not pinned",
                    hint=f"run `proml init` once to pin the recorded ledger, then commit "
                    f"{identity.LOCK_NAME}",
                )
        if attach and lock is not None and attach.lower() != lock.ledger.lower():
            raise InputError(
                f"{identity.LOCK_NAME} pins the ledger {lock.ledger}, not {attach}",
                hint=f"join the ledger {identity.LOCK_NAME} names, or remove the lock to "
                "start another project",
            )
        address = attach or (recorded.ledger if recorded else None)
        config = self.chain_config()
        with open_ledger(config, signer=signer, address=address) as ledger:
            if recorded is not None and ledger.chain_id != recorded.chain_id:
                raise InputError(
                    f"the chain at {config.url or 'the embedded backend'} has id "
                    f"{ledger.chain_id}, but this project's ledger is on chain {recorded.chain_id}",
                    hint="check chain.url / PROML_CHAIN_URL",
                )
            if lock is not None and not deploy:
                identity.check_chain(lock, ledger)
            yield ledger

    def store(self) -> ContentStore:
        """The project's content store (embedded under ``.proml/content`` by default)."""
        from proml_cli.content import open_store

        backend = "kubo" if self.settings.ipfs_url else self.policy.storage.backend
        kind = "embedded" if backend == "embedded" else "kubo"
        url = self.settings.ipfs_url or self.policy.storage.ipfs
        return open_store(
            kind, root=self.state_dir / "content", url=url, timeout=self.policy.storage.timeout
        )


def read_state(path: Path) -> ProjectState:
    """Read ``.proml/project.json``, checking every field.

    Raises:
        InputError: the file is unreadable, not JSON, or not the shape ``init`` writes.
    """
    hint = "restore it from a backup, or check it with `proml fsck`"
    shown = _display(path)
    try:
        data = json.loads(path.read_bytes())
    except IsADirectoryError:
        raise InputError(f"{shown} is a directory, not a file", hint=hint) from None
    except OSError as exc:
        raise InputError(f"cannot read {shown}: {exc.strerror or exc}", hint=hint) from exc
    except UnicodeDecodeError:
        raise InputError(f"{shown} is not text (not UTF-8)", hint=hint) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{shown} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint=hint,
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{shown} holds a JSON {type(data).__name__}, not the object `proml init` writes",
            hint=hint,
        )
    problems = []
    for key, kind in (("backend", str), ("chain_id", int), ("ledger", str), ("admin", str)):
        value = data.get(key)
        if value is None:
            problems.append(f"'{key}' is missing")
        elif not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"'{key}' is not {'a string' if kind is str else 'an integer'}")
    block = data.get("deployed_block", 0)
    if not isinstance(block, int) or isinstance(block, bool) or block < 0:
        problems.append("'deployed_block' is not a block number")
    for key in ("ledger", "admin"):
        value = data.get(key)
        if isinstance(value, str) and not _is_address(value):
            problems.append(f"'{key}' is not an address")
    if problems:
        raise InputError(f"{shown}: {'; '.join(problems)}", hint=hint)
    return ProjectState(
        backend=data["backend"],
        chain_id=data["chain_id"],
        ledger=data["ledger"],
        admin=data["admin"],
        deployed_block=block,
    )


def _is_address(text: str) -> bool:
    return (
        len(text) == 42
        and text[:2] == "0x"
        and all(c in "0123456789abcdefABCDEF" for c in text[2:])
    )


def _display(path: Path) -> str:
    """How to name the policy in messages: relative to the working directory when inside it."""
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def load_project(
    policy_path: str | None = None,
    *,
    start: Path | None = None,
    announce: Callable[[str], None] | None = None,
    settings: Settings,
) -> Project:
    """Find and validate the policy, and locate the state directory beside it.

    ``announce`` is told which address signs whenever a command chooses its signer.
    ``settings`` is what the caller's boundary resolved from the environment.

    Raises:
        InputError: no policy; PolicyError: an invalid one.
    """
    from proml_cli.policy import load_policy

    path = find_policy(start, policy_path or settings.policy)
    policy = load_policy(path, source=_display(path))
    return Project(
        policy=policy, state_dir=path.parent / STATE_NAME, announce=announce, settings=settings
    )


def write_template(policy_path: Path) -> str:
    """Write the policy template at ``policy_path``; return the project name it was given.

    The project is named after its directory when that makes a valid name, else
    ``my-project``.

    Raises:
        InputError: the file cannot be written.
    """
    import re

    from proml_cli.policy import name_problem, render_template

    directory = policy_path.resolve().parent.name.lower()
    guess = re.sub(r"[^a-z0-9._-]+", "-", directory).strip("-._")[:32]
    project = guess if guess and name_problem(guess) is None else "my-project"
    try:
        policy_path.write_text(render_template(project), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{policy_path}: cannot write the policy ({exc.strerror})") from exc
    return project


def _normal(spec: Kind) -> tuple[object, ...]:
    """A kind in a comparable form (the contract returns roles and sources in its own order)."""
    return (
        spec.states,
        spec.initial,
        frozenset(spec.register),
        frozenset(
            (t.name, frozenset(t.sources), t.target, frozenset(t.roles))
            for t in spec.transitions.values()
        ),
        frozenset(spec.consumable),
    )


def initialise(
    policy_path: Path,
    *,
    account: str | None,
    grant_admin: bool,
    attach: str | None = None,
    announce: Callable[[str], None] | None = None,
    settings: Settings,
) -> dict[str, Any]:
    """``proml init``: local state, account, ledger, and the policy's roles/kinds/artefacts on it.

    Kinds and artefacts follow the policy (docs/policy.md, "Changing a kind after init"): a
    kind missing on the ledger is defined, a changed one redefined while no version of it
    exists, an artefact whose kind changed is rebound; each is reported in the actions.

    Returns:
        A summary (ledger address, chain id, admin, actions taken).

    Raises:
        PolicyError: the policy is invalid; InputError: a kind that has recorded versions
            differs from the ledger's (the hint is the successor-kind path).
    """
    from proml_cli.account import DEFAULT_ACCOUNT, create_account, keys_dir
    from proml_cli.identity import LOCK_NAME, identify, read_lock, write_lock
    from proml_cli.policy import load_policy

    policy = load_policy(policy_path.resolve(), source=_display(policy_path.resolve()))
    project = Project(
        policy=policy,
        state_dir=policy_path.resolve().parent / STATE_NAME,
        announce=announce,
        settings=settings,
    )
    project.state_dir.mkdir(mode=0o700, exist_ok=True)
    (project.state_dir / ".gitignore").write_text("*\n")
    actions: list[str] = []
    name = account or project.settings.account or DEFAULT_ACCOUNT
    if (
        not project.settings.private_key
        and not (keys_dir(project.state_dir) / f"{name}.json").exists()
    ):
        info = create_account(
            project.state_dir,
            name,
            prompt=project.is_network(),
            password=project.settings.keystore_password,
        )
        actions.append(f"created local account '{name}' ({info.address})")
    signer = project.signer(account)
    is_new = not (project.state_dir / PROJECT_FILE).exists()
    if not is_new and attach and attach.lower() != project.state().ledger.lower():
        raise InputError(
            f"this project is already attached to {project.state().ledger}, not {attach}"
        )
    lock = read_lock(project.root)
    if is_new and lock is not None and not attach:
        # A clone of a pinned project: join the pinned ledger, never deploy a second one.
        attach = lock.ledger
    with project.ledger(
        signer,
        deploy=is_new and not attach,
        attach=attach if is_new else None,
        is_pinned=False,
    ) as ledger:
        if is_new:
            history = ledger.history()
            project.write_state(
                ProjectState(
                    backend=project.chain_backend(),
                    chain_id=ledger.chain_id,
                    ledger=ledger.address,
                    admin=ledger.admin(),
                    deployed_block=history[0].block if history else 0,
                )
            )
            verb = "attached to" if attach else "deployed"
            actions.append(f"{verb} the ledger at {ledger.address}")
        if lock is None:
            pinned = identify(ledger)
            write_lock(project.root, pinned)
            how = "" if is_new and not attach else " (trust on first use: check it)"
            actions.append(
                f"pinned the ledger's identity in {LOCK_NAME}{how}: commit it with the policy "
                f"(deployed in block {pinned.deploy_block} {pinned.deploy_block_hash})"
            )
        elif is_new:
            # Attaching through a committed lock; a re-run on a set-up project changes nothing.
            actions.append(f"checked the ledger against {LOCK_NAME}")
        state = project.state()
        is_admin = ledger.admin().lower() == ledger.account.lower()
        if not is_admin:
            # Another organisation's ledger: check it carries our policy; never change it.
            return _check_attached(project, ledger, state, actions)
        if ledger.define_roles(policy.roles) is not None:
            actions.append(f"defined roles: {', '.join(policy.roles)}")
        # Only the kinds some artefact uses go on-chain: unused built-ins would be clutter.
        used = {a.kind for a in policy.artefacts.values()}
        for kind in (k for k in policy.kinds.values() if k.name in used):
            actions.extend(_sync_kind(ledger, kind, policy_path.name))
        actions.extend(_sync_artefacts(ledger, {n: a.kind for n, a in policy.artefacts.items()}))
        if grant_admin and is_admin:
            held = set(ledger.roles_of(ledger.account))
            for role in policy.roles:
                if role not in held:
                    ledger.grant_role(role, ledger.account)
                    actions.append(f"granted '{role}' to the admin")
        return _summary(state, ledger, actions)


def _sync_kind(ledger: Ledger, wanted: Kind, policy_name: str) -> list[str]:
    """Define ``wanted`` on the ledger, or redefine it while no version of it exists.

    Raises:
        InputError: the kind differs from the ledger's and has recorded versions: its rules are
            fixed; the hint is the successor-kind path (docs/policy.md).
    """
    from proml_cli.consistency import kind_differences

    onchain = ledger.kind(wanted.name)
    if onchain is None:
        ledger.define_kind(wanted)
        return [f"defined kind '{wanted.name}'"]
    if _normal(onchain) == _normal(wanted):
        return []
    changes = "; ".join(kind_differences(wanted, onchain))
    if onchain.in_use:
        raise InputError(
            f"kind '{wanted.name}' in {policy_name} differs from its definition on the ledger "
            f"({changes}), and versions of it are recorded: its rules are fixed",
            hint=(
                f"keep '{wanted.name}' as it is on the ledger, add the changed machine as a new "
                f"kind (e.g. '{wanted.name}-v2') and point the artefacts at it, then run "
                "`proml init` again: it rebinds them, recorded versions keep their kind "
                "(docs/policy.md, 'Changing a kind after init')"
            ),
        )
    ledger.define_kind(wanted)
    return [f"redefined kind '{wanted.name}' (no version of it was recorded): {changes}"]


def _sync_artefacts(ledger: Ledger, kinds: dict[str, str]) -> list[str]:
    """Bind new artefacts, and rebind those whose kind the policy changed."""
    actions = []
    new: dict[str, str] = {}
    for name, kind in kinds.items():
        bound = ledger.artefact_kind(name)
        if bound is None:
            new[name] = kind
        elif bound != kind:
            ledger.rebind_artefact(name, kind)
            actions.append(
                f"rebound artefact '{name}' from kind '{bound}' to '{kind}' "
                "(recorded versions keep their kind)"
            )
    if new and ledger.define_artefacts(new) is not None:
        actions.insert(0, f"defined artefacts: {', '.join(new)}")
    return actions


def _summary(state: ProjectState, ledger: Ledger, actions: list[str]) -> dict[str, Any]:
    """What ``init`` reports: where the ledger is, who administers it, what this run did."""
    return {
        "backend": state.backend,
        "chain_id": state.chain_id,
        "ledger": state.ledger,
        "admin": ledger.admin(),
        "account": ledger.account,
        "roles": list(ledger.roles_of(ledger.account)),
        "actions": actions,
    }


def _check_attached(
    project: Project, ledger: Ledger, state: ProjectState, actions: list[str]
) -> dict[str, Any]:
    """For a non-admin: the ledger must already define what the policy uses, as the policy says."""
    policy = project.policy
    problems = []
    for name, artefact in policy.artefacts.items():
        bound = ledger.artefact_kind(name)
        if bound is None:
            problems.append(f"artefact '{name}' is not defined on the ledger")
        elif bound != artefact.kind:
            problems.append(f"artefact '{name}' is of kind '{bound}' on the ledger")
    from proml_cli.consistency import kind_differences

    for kind_name in sorted({a.kind for a in policy.artefacts.values()}):
        onchain = ledger.kind(kind_name)
        if onchain is None:
            continue
        problems.extend(
            f"kind '{kind_name}': {d}" for d in kind_differences(policy.kinds[kind_name], onchain)
        )
    if problems:
        raise InputError(
            "this policy does not match the project's ledger: " + "; ".join(problems),
            hint="use the policy the project's admin published, or ask the admin to run proml init",
        )
    actions.append("checked the policy against the ledger (not the admin: nothing changed)")
    return _summary(state, ledger, actions)
