"""The ProMLLedger contract on a real EVM: every rule and error, admin, roles, batches, events.

Each custom error the contract declares is provoked here and checked through the client's
``LedgerError`` (its message and its ``contract_error``). Where the Python client validates an
argument before sending it, the contract function is also called directly, so that the rule is
shown to hold on-chain and not only in the client.
"""

from __future__ import annotations

from typing import Any

import pytest
from _chain_helpers import (
    DATASET,
    MODEL,
    ROLES,
    Project,
    cid_of,
    define_kind_raw,
    random_cid,
    random_digest,
    refused,
    unique,
)

from proml_cli.errors import InputError, LedgerError
from proml_cli.ledger import (
    Kind,
    Ledger,
    Move,
    Registration,
    Transition,
    VersionRef,
    VersionState,
)
from proml_cli.ledger._client import compiled_contract, name32

pytestmark = pytest.mark.integration

ZERO = "0x" + "00" * 20
EMPTY32 = b"\0" * 32


@pytest.fixture(scope="module")
def project(ledger_project: Project) -> Project:
    """The module's deployed project (see conftest)."""
    return ledger_project


def direct(ledger: Ledger, function: str, *args: Any) -> Any:
    """Send ``function(*args)`` to the contract as-is, past the client's own checks."""
    client: Any = ledger
    return client._transact(getattr(client._contract.functions, function)(*args))


def register(ledger: Ledger, artefact: str, inputs: tuple[VersionRef, ...] = ()) -> VersionRef:
    """Register a new random version of ``artefact`` and return it."""
    ref = VersionRef(artefact, random_digest())
    ledger.submit(random_cid(), [Registration(ref, random_cid(), inputs)], [])
    return ref


def move(ledger: Ledger, ref: VersionRef, transition: str) -> None:
    ledger.submit(random_cid(), [], [Move(ref, transition)])


def state(ledger: Ledger, ref: VersionRef) -> str | None:
    found = ledger.version(ref)
    return None if found is None else found.state


def simple_kind(name: str, **changes: Any) -> Kind:
    """A valid two-state kind named ``name``, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "name": name,
        "states": ("draft", "final"),
        "initial": "draft",
        "register": ("dev",),
        "transitions": (Transition("finish", ("draft",), "final", ("dev",)),),
    }
    fields.update(changes)
    return Kind.of(**fields)


def test_every_declared_error_is_covered_here() -> None:
    declared = {item["name"] for item in compiled_contract()["abi"] if item["type"] == "error"}
    # TooManyKinds needs 65,534 kinds; it is the one limit this suite does not reach.
    covered = {
        "NotAdmin", "NotPendingAdmin", "ZeroAddress", "EmptyName", "RoleExists", "UnknownRole",
        "TooManyRoles", "KindInUse", "UnknownKind", "NoStates", "TooManyStates",
        "DuplicateState", "BadInitialState", "UnknownState", "NoRoles", "NoSourceStates",
        "DuplicateTransition", "UnknownTransition", "MissingRole", "WrongState",
        "DuplicateVersion", "UnknownVersion", "UnknownArtefact", "ArtefactExists", "EmptyBatch",
        "LengthMismatch",
    }  # fmt: skip
    assert declared - covered == {"TooManyKinds"}


# ---------------------------------------------------------------------------- admin


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda p, lg: lg.define_roles([unique("role")]), id="define_roles"),
        pytest.param(lambda p, lg: lg.define_kind(simple_kind(unique("kind"))), id="define_kind"),
        pytest.param(
            lambda p, lg: lg.define_artefacts({unique("art"): "dataset"}), id="define_artefacts"
        ),
        pytest.param(lambda p, lg: lg.grant_role("dev", lg.account), id="grant_role"),
        pytest.param(
            lambda p, lg: lg.revoke_role("dev", p.members["dev"].account), id="revoke_role"
        ),
        pytest.param(lambda p, lg: lg.transfer_admin(lg.account), id="transfer_admin"),
    ],
)
@pytest.mark.parametrize("who", ["outsider", "verifier"])
def test_only_the_admin_administers(project: Project, action: Any, who: str) -> None:
    caller = project.outsider if who == "outsider" else project.members[who]
    with refused("NotAdmin", "is not the project's admin") as info:
        action(project, caller)
    assert caller.account.lower() in str(info.value).lower()
    assert project.ledger.admin() == project.admin.address
    assert project.members["dev"].account in _holders(project, "dev")


def _holders(project: Project, role: str) -> list[str]:
    members = project.members.values()
    return [m.account for m in members if role in project.ledger.roles_of(m.account)]


def test_only_the_pending_admin_accepts(project: Project) -> None:
    with refused("NotPendingAdmin", "has no pending admin offer"):
        project.outsider.accept_admin()
    with refused("NotPendingAdmin"):
        project.ledger.accept_admin()  # the admin itself was offered nothing


def test_zero_address_is_refused(project: Project) -> None:
    with refused("ZeroAddress", "zero address"):
        project.ledger.grant_role("dev", ZERO)
    with refused("ZeroAddress"):
        project.ledger.transfer_admin(ZERO)


def test_admin_hand_over_takes_effect_on_acceptance(fresh_ledger: tuple[Ledger, Any]) -> None:
    from eth_account import Account

    old, old_account = fresh_ledger
    new = old.with_signer(Account.create())
    other = old.with_signer(Account.create())

    old.transfer_admin(other.account)
    old.transfer_admin(new.account)  # a second offer replaces the first
    with refused("NotPendingAdmin"):
        other.accept_admin()
    # Until accepted, the old admin keeps every power and the new one has none.
    assert old.admin() == old_account.address
    old.define_roles(["before"])
    with refused("NotAdmin"):
        new.define_roles(["too-early"])

    receipt = new.accept_admin()
    assert old.admin() == new.account
    with refused("NotAdmin", old_account.address):
        old.define_roles(["after"])
    with refused("NotAdmin"):
        old.grant_role("before", old_account.address)
    with refused("NotPendingAdmin"):
        new.accept_admin()  # the offer was used up
    new.define_roles(["after"])
    new.grant_role("after", old_account.address)
    assert old.roles_of(old_account.address) == ("after",)

    handovers = [e for e in old.history() if e.name.startswith("Admin")]
    assert [(e.name, e.args) for e in handovers] == [
        ("AdminTransferred", {"previous": ZERO, "admin": old_account.address}),
        ("AdminTransferStarted", {"admin": old_account.address, "pending": other.account}),
        ("AdminTransferStarted", {"admin": old_account.address, "pending": new.account}),
        ("AdminTransferred", {"previous": old_account.address, "admin": new.account}),
    ]
    assert handovers[-1].tx_hash == receipt.tx_hash


# ---------------------------------------------------------------------------- roles


def test_empty_names_are_refused_by_client_and_contract(project: Project) -> None:
    with pytest.raises(InputError, match="1 to 32 ASCII"):
        project.ledger.define_roles([""])
    with pytest.raises(InputError, match="1 to 32 ASCII"):
        project.ledger.define_roles(["x" * 33])
    with refused("EmptyName", "empty name"):
        direct(project.ledger, "defineRoles", [EMPTY32])
    with refused("EmptyName"):
        direct(project.ledger, "defineArtefacts", [EMPTY32], [name32("dataset")])
    with refused("EmptyName"):
        direct(project.ledger, "defineKind", EMPTY32, [name32("a")], 0, [name32("dev")], [], [])
    kind = unique("kind")
    with refused("EmptyName"):
        direct(project.ledger, "defineKind", name32(kind), [name32("a"), EMPTY32], 0, [], [], [])
    transition = (EMPTY32, [name32("a")], name32("a"), [name32("dev")])
    with refused("EmptyName"):
        direct(
            project.ledger, "defineKind", name32(kind), [name32("a")], 0, [name32("dev")], [],
            [transition],
        )  # fmt: skip
    assert project.ledger.kind(kind) is None


def test_role_exists(project: Project) -> None:
    before = project.ledger.role_names()
    assert project.ledger.define_roles(["dev", "verifier"]) is None  # the client skips them
    with refused("RoleExists", "role 'dev' is already defined"):
        direct(project.ledger, "defineRoles", [name32("dev")])
    fresh = unique("role")
    with refused("RoleExists", fresh):
        direct(project.ledger, "defineRoles", [name32(fresh), name32(fresh)])
    assert project.ledger.role_names() == before


def test_unknown_role(project: Project) -> None:
    with refused("UnknownRole", "role 'auditor' is not defined"):
        project.ledger.grant_role("auditor", project.outsider.account)
    with refused("UnknownRole", "auditor"):
        project.ledger.revoke_role("auditor", project.outsider.account)
    name = unique("kind")
    with refused("UnknownRole", "auditor"):
        project.ledger.define_kind(simple_kind(name, register=("dev", "auditor")))
    bad = (Transition("finish", ("draft",), "final", ("auditor",)),)
    with refused("UnknownRole", "auditor"):
        project.ledger.define_kind(simple_kind(name, transitions=bad))
    assert project.ledger.kind(name) is None


def test_too_many_roles_at_the_128th_boundary(fresh_ledger: tuple[Ledger, Any]) -> None:
    ledger, admin = fresh_ledger
    names = [f"role-{i}" for i in range(128)]
    ledger.define_roles(names[:100])
    ledger.define_roles(names[100:])
    assert ledger.role_names() == tuple(names)
    with refused("TooManyRoles", "at most 128 roles"):
        ledger.define_roles(["one-too-many"])
    assert len(ledger.role_names()) == 128

    # The last role's bit (127) still packs into the kind's and transitions' role masks.
    last = names[-1]
    ledger.define_kind(
        Kind.of("edge", ("a", "b"), "a", (last,), (Transition("go", ("a",), "b", (last,)),))
    )
    ledger.define_artefacts({"edge-art": "edge"})
    ref = VersionRef("edge-art", random_digest())
    with refused("MissingRole", "register"):
        ledger.submit(random_cid(), [Registration(ref, random_cid())], [])
    ledger.grant_role(last, admin.address)
    ledger.grant_role(names[0], admin.address)
    assert ledger.roles_of(admin.address) == (names[0], last)
    ledger.submit(random_cid(), [Registration(ref, random_cid())], [Move(ref, "go")])
    assert state(ledger, ref) == "b"
    kind = ledger.kind("edge")
    assert kind is not None
    assert kind.register == (last,)
    assert kind.transitions["go"].roles == (last,)


def test_revoking_a_role_removes_its_power(project: Project) -> None:
    from eth_account import Account

    admin = project.ledger
    artefact = project.artefact("dataset")
    member = admin.with_signer(Account.create())
    assert admin.roles_of(member.account) == ()

    admin.grant_role("data-admin", member.account)
    assert admin.grant_role("data-admin", member.account).gas_used < 30_000  # held: a no-op
    assert admin.roles_of(member.account) == ("data-admin",)
    first = register(member, artefact)

    admin.revoke_role("data-admin", member.account)
    assert admin.roles_of(member.account) == ()
    with refused("MissingRole", "'register'", "kind 'dataset'", member.account):
        register(member, artefact)
    with refused("MissingRole", "'validate'"):
        move(member, first, "validate")
    assert state(admin, first) == "raw"

    admin.revoke_role("data-admin", member.account)  # not held: a no-op
    admin.grant_role("verifier", member.account)
    move(member, first, "validate")  # verifier may validate too
    assert state(admin, first) == "validated"

    grants = [
        (e.name, e.args["role"])
        for e in admin.history()
        if e.name in ("RoleGranted", "RoleRevoked") and e.args["account"] == member.account
    ]
    assert grants == [
        ("RoleGranted", "data-admin"),
        ("RoleRevoked", "data-admin"),
        ("RoleGranted", "verifier"),
    ]


# ---------------------------------------------------------------------------- kinds


def test_a_kind_with_versions_is_fixed(project: Project) -> None:
    name, artefact = unique("kind"), unique("art")
    project.ledger.define_kind(simple_kind(name))
    project.ledger.define_artefacts({artefact: name})
    ref = VersionRef(artefact, random_digest())
    project.ledger.submit(random_cid(), [Registration(ref, random_cid())], [])
    assert project.ledger.kind(name).in_use  # type: ignore[union-attr]
    with refused("KindInUse", f"kind '{name}' has recorded versions", "fixed") as info:
        project.ledger.define_kind(simple_kind(name, consumable=("final",)))
    assert f"{name}-v2" in str(info.value.hint)
    assert project.ledger.kind(name) == simple_kind(name)


def test_an_unused_kind_is_redefined_and_artefacts_follow(project: Project) -> None:
    name, artefact = unique("kind"), unique("art")
    project.ledger.define_kind(simple_kind(name))
    project.ledger.define_artefacts({artefact: name})
    changed = simple_kind(name, states=("draft", "final", "void"), consumable=("final",))
    project.ledger.define_kind(changed)
    assert project.ledger.kind(name) == changed
    ref = VersionRef(artefact, random_digest())
    project.ledger.submit(random_cid(), [Registration(ref, random_cid())], [])
    assert project.ledger.version(ref) == VersionState(artefact, ref.digest, name, "draft")
    assert project.ledger.kind(name).in_use  # type: ignore[union-attr]
    with refused("KindInUse"):
        project.ledger.define_kind(simple_kind(name))


def test_rebinding_keeps_old_versions_in_their_kind(project: Project) -> None:
    old_kind, new_kind, artefact = unique("kind"), unique("kind"), unique("art")
    project.ledger.define_kind(simple_kind(old_kind))
    project.ledger.define_kind(
        simple_kind(new_kind, states=("a", "b"), initial="b", transitions=())
    )
    project.ledger.define_artefacts({artefact: old_kind})
    before = VersionRef(artefact, random_digest())
    project.ledger.submit(random_cid(), [Registration(before, random_cid())], [])
    assert project.ledger.rebind_artefact(artefact, new_kind) is not None
    assert project.ledger.rebind_artefact(artefact, new_kind) is None  # nothing to do
    after = VersionRef(artefact, random_digest())
    project.ledger.submit(random_cid(), [Registration(after, random_cid())], [])
    old = VersionState(artefact, before.digest, old_kind, "draft")
    assert project.ledger.version(before) == old
    assert project.ledger.version(after) == VersionState(artefact, after.digest, new_kind, "b")
    assert project.ledger.artefact_kind(artefact) == new_kind
    with refused("UnknownArtefact"):
        project.ledger.rebind_artefact(unique("art"), new_kind)


def test_unknown_kind(project: Project) -> None:
    name = unique("art")
    with refused("UnknownKind", "kind 'no-such-kind' is not defined"):
        project.ledger.define_artefacts({name: "no-such-kind"})
    assert project.ledger.artefact_kind(name) is None
    assert project.ledger.kind("no-such-kind") is None


def test_no_states(project: Project) -> None:
    name = unique("kind")
    with pytest.raises(InputError, match="not a state"):  # the client checks `initial` first
        project.ledger.define_kind(simple_kind(name, states=()))
    with refused("NoStates", f"kind '{name}' has no states"):
        direct(project.ledger, "defineKind", name32(name), [], 0, [name32("dev")], [], [])
    assert project.ledger.kind(name) is None


def test_too_many_states(project: Project) -> None:
    name = unique("kind")
    states = tuple(f"s{i}" for i in range(65))
    with refused("TooManyStates", f"kind '{name}' has more than 64 states"):
        project.ledger.define_kind(simple_kind(name, states=states, initial="s0", transitions=()))
    assert project.ledger.kind(name) is None
    # 64 states is the limit, and the last one is reachable.
    go = (Transition("last", ("s0",), "s63", ("dev",)),)
    project.ledger.define_kind(simple_kind(name, states=states[:64], initial="s0", transitions=go))
    artefact = project.artefact(name)
    ref = register(project.ledger, artefact)
    move(project.ledger, ref, "last")
    assert state(project.ledger, ref) == "s63"


def test_duplicate_state(project: Project) -> None:
    name = unique("kind")
    with refused("DuplicateState", f"kind '{name}' lists state 'draft' twice"):
        project.ledger.define_kind(simple_kind(name, states=("draft", "final", "draft")))
    assert project.ledger.kind(name) is None


def test_bad_initial_state(project: Project) -> None:
    name = unique("kind")
    with pytest.raises(InputError, match="initial state 'nowhere' is not a state"):
        project.ledger.define_kind(simple_kind(name, initial="nowhere"))
    states = [name32("draft"), name32("final")]
    with refused("BadInitialState", f"kind '{name}' has no state number 2"):
        direct(project.ledger, "defineKind", name32(name), states, 2, [name32("dev")], [], [])
    assert project.ledger.kind(name) is None


@pytest.mark.parametrize("where", ["source", "target"])
def test_unknown_state(project: Project, where: str) -> None:
    name = unique("kind")
    sources, target = (("nowhere",), "final") if where == "source" else (("draft",), "nowhere")
    bad = (Transition("finish", sources, target, ("dev",)),)
    with refused("UnknownState", f"kind '{name}' has no state 'nowhere'"):
        project.ledger.define_kind(simple_kind(name, transitions=bad))
    assert project.ledger.kind(name) is None


def test_no_roles(project: Project) -> None:
    name = unique("kind")
    with refused("NoRoles", "'register' of kind", name):
        project.ledger.define_kind(simple_kind(name, register=()))
    bad = (Transition("finish", ("draft",), "final", ()),)
    with refused("NoRoles", f"'finish' of kind '{name}' names no role"):
        project.ledger.define_kind(simple_kind(name, transitions=bad))
    assert project.ledger.kind(name) is None


def test_no_source_states(project: Project) -> None:
    name = unique("kind")
    bad = (Transition("finish", (), "final", ("dev",)),)
    with refused("NoSourceStates", f"transition 'finish' of kind '{name}' has no source state"):
        project.ledger.define_kind(simple_kind(name, transitions=bad))
    assert project.ledger.kind(name) is None


def test_duplicate_transition(project: Project) -> None:
    name = unique("kind")
    twice = (
        Transition("finish", ("draft",), "final", ("dev",)),
        Transition("finish", ("final",), "draft", ("dev",)),
    )
    # The model keys transitions by name: only a raw call can send the same name twice.
    with refused("DuplicateTransition", f"kind '{name}' defines transition 'finish' twice"):
        define_kind_raw(project.ledger, simple_kind(name), twice)
    assert project.ledger.kind(name) is None


def test_kinds_read_back_as_defined(project: Project) -> None:
    assert project.ledger.kind("dataset") == DATASET
    assert project.ledger.kind("model") == MODEL
    # Roles come back in their on-chain (definition) order, whatever order the spec used.
    name = unique("kind")
    spec = simple_kind(
        name,
        states=("a", "b", "c"),
        initial="b",
        register=("operator", "dev"),
        transitions=(
            Transition("down", ("c", "b"), "a", ("verifier", "data-admin")),
            Transition("up", ("a",), "c", ("dev",)),
        ),
    )
    project.ledger.define_kind(spec)
    assert project.ledger.kind(name) == Kind.of(
        name,
        ("a", "b", "c"),
        "b",
        ("dev", "operator"),
        (
            Transition("down", ("b", "c"), "a", ("data-admin", "verifier")),
            Transition("up", ("a",), "c", ("dev",)),
        ),
    )


# ---------------------------------------------------------------------------- artefacts


def test_artefact_binding(project: Project) -> None:
    name = unique("art")
    assert project.ledger.artefact_kind(name) is None
    project.ledger.define_artefacts({name: "model"})
    assert project.ledger.artefact_kind(name) == "model"
    assert project.ledger.define_artefacts({name: "model"}) is None  # already so: nothing to do
    with pytest.raises(LedgerError, match="is of kind 'model' on the ledger") as info:
        project.ledger.define_artefacts({name: "dataset"})  # the client refuses before sending
    assert info.value.hint is not None
    with refused("ArtefactExists", f"artefact '{name}' is already defined (kind 'model')"):
        direct(project.ledger, "defineArtefacts", [name32(name)], [name32("dataset")])
    assert project.ledger.artefact_kind(name) == "model"


def test_length_mismatch(project: Project) -> None:
    name = unique("art")
    with refused("LengthMismatch", "differ in length"):
        direct(project.ledger, "defineArtefacts", [name32(name)], [])
    assert project.ledger.artefact_kind(name) is None


def test_unknown_artefact(project: Project) -> None:
    name = unique("art")
    with refused("UnknownArtefact", f"artefact '{name}' is not defined"):
        register(project.ledger, name)


# ---------------------------------------------------------------------------- versions


def test_register_and_transition_follow_the_kind(project: Project) -> None:
    dev, verifier, operator = (project.members[r] for r in ("dev", "verifier", "operator"))
    artefact = project.artefact("model")
    ref = register(dev, artefact)
    assert dev.version(ref) == VersionState(artefact, ref.digest, "model", "trained")
    move(verifier, ref, "approve")
    move(operator, ref, "deploy")
    move(operator, ref, "revoke")
    assert state(dev, ref) == "revoked"
    # The same bytes under another artefact are another version, in its own machine.
    twin = VersionRef(project.artefact("model"), ref.digest)
    dev.submit(random_cid(), [Registration(twin, random_cid())], [])
    assert state(dev, twin) == "trained"
    # A `sha256:` prefix names the same version.
    assert state(dev, VersionRef(artefact, "sha256:" + ref.digest)) == "revoked"


def test_missing_role_to_register(project: Project) -> None:
    artefact = project.artefact("dataset")
    with refused("MissingRole", "'register' on kind 'dataset'", project.outsider.account):
        register(project.outsider, artefact)
    with refused("MissingRole", "'register' on kind 'dataset'"):
        register(project.members["dev"], artefact)  # dev registers models, not datasets


def test_missing_role_to_transition(project: Project) -> None:
    artefact = project.artefact("dataset")
    ref = register(project.members["data-admin"], artefact)
    with refused("MissingRole", "'reject' on kind 'dataset'"):
        move(project.members["data-admin"], ref, "reject")
    with refused("MissingRole", "'validate'", project.members["dev"].account):
        move(project.members["dev"], ref, "validate")
    assert state(project.ledger, ref) == "raw"


def test_wrong_state(project: Project) -> None:
    artefact = project.artefact("model")
    ref = register(project.members["dev"], artefact)
    with refused("WrongState", "'deploy' is not allowed from state 'trained'", artefact):
        move(project.members["operator"], ref, "deploy")
    move(project.members["verifier"], ref, "approve")
    with refused("WrongState", "'approve' is not allowed from state 'approved'", ref.digest[:12]):
        move(project.members["verifier"], ref, "approve")
    assert state(project.ledger, ref) == "approved"


def test_wrong_state_is_checked_before_the_role(project: Project) -> None:
    # The contract reports the state before the role: an outsider learns the version's state.
    artefact = project.artefact("model")
    ref = register(project.members["dev"], artefact)
    with refused("WrongState"):
        move(project.outsider, ref, "deploy")
    with refused("MissingRole"):
        move(project.outsider, ref, "approve")


def test_duplicate_version(project: Project) -> None:
    artefact = project.artefact("dataset")
    ref = register(project.ledger, artefact)
    move(project.ledger, ref, "validate")
    with refused("DuplicateVersion", f"version sha256:{ref.digest[:12]} of '{artefact}'"):
        project.ledger.submit(random_cid(), [Registration(ref, random_cid())], [])
    assert state(project.ledger, ref) == "validated"  # not reset to the initial state


def test_unknown_version(project: Project) -> None:
    artefact = project.artefact("dataset")
    ghost = VersionRef(artefact, random_digest())
    with refused("UnknownVersion", f"version sha256:{ghost.digest[:12]} of '{artefact}'"):
        move(project.ledger, ghost, "validate")
    assert project.ledger.version(ghost) is None


def test_unknown_transition(project: Project) -> None:
    ref = register(project.ledger, project.artefact("dataset"))
    with refused("UnknownTransition", "kind 'dataset' has no transition 'approve'"):
        move(project.ledger, ref, "approve")  # a transition of another kind
    with pytest.raises(InputError):
        move(project.ledger, ref, "")


def test_empty_batch(project: Project) -> None:
    with refused("EmptyBatch", "nothing to submit"):
        project.ledger.submit(random_cid(), [], [])


# ---------------------------------------------------------------------------- batches


def _snapshot(ledger: Ledger, refs: list[VersionRef]) -> tuple[list[str | None], int]:
    return [state(ledger, r) for r in refs], len(ledger.history())


def test_batch_applies_everything_in_one_transaction(project: Project) -> None:
    data, model = project.artefact("dataset"), project.artefact("model")
    old = register(project.ledger, data)
    new_data = VersionRef(data, random_digest())
    new_model = VersionRef(model, random_digest())
    record = random_cid()
    receipt = project.ledger.submit(
        record,
        [
            Registration(new_data, random_cid(), (old,)),
            Registration(new_model, random_cid(), (new_data, old)),
        ],
        [Move(new_data, "validate"), Move(old, "reject"), Move(new_model, "approve")],
    )
    assert [state(project.ledger, r) for r in (old, new_data, new_model)] == [
        "rejected",
        "validated",
        "approved",
    ]
    events = [e for e in project.ledger.history() if e.tx_hash == receipt.tx_hash]
    assert [e.name for e in events] == ["Registered"] * 2 + ["Transitioned"] * 3
    assert {e.args["recordCid"] for e in events} == {record}
    assert [e.log_index for e in events] == sorted(e.log_index for e in events)
    assert events[1].args["inputs"] == [
        {"artefact": data, "digest": new_data.digest},
        {"artefact": data, "digest": old.digest},
    ]


@pytest.mark.parametrize(
    ("bad", "error"),
    [("first", "DuplicateVersion"), ("middle", "UnknownTransition"), ("last", "WrongState")],
)
def test_batch_is_all_or_nothing(project: Project, bad: str, error: str) -> None:
    artefact = project.artefact("dataset")
    existing = register(project.ledger, artefact)
    fresh = [VersionRef(artefact, random_digest()) for _ in range(3)]
    registrations = [Registration(r, random_cid()) for r in fresh]
    moves = [Move(fresh[0], "validate"), Move(existing, "validate"), Move(fresh[1], "reject")]
    if bad == "first":
        registrations.insert(0, Registration(existing, random_cid()))  # DuplicateVersion
    elif bad == "middle":
        moves.insert(1, Move(fresh[2], "deploy"))  # UnknownTransition
    else:
        moves.append(Move(fresh[0], "validate"))  # WrongState: already validated in this batch
    watched = [existing, *fresh]
    before = _snapshot(project.ledger, watched)
    with refused(error):
        project.ledger.submit(random_cid(), registrations, moves)
    assert _snapshot(project.ledger, watched) == before == (["raw", None, None, None], before[1])


def test_a_batch_that_reverts_on_chain_changes_nothing(project: Project) -> None:
    # The client estimates gas first, so a bad batch never reaches a block through it. Here the
    # transaction is mined anyway (fixed gas, no estimate) to show the EVM itself rolls back.
    client: Any = project.ledger
    artefact = project.artefact("dataset")
    existing = register(project.ledger, artefact)
    fresh = VersionRef(artefact, random_digest())
    from proml_cli.ledger._client import cid_bytes, digest32

    regs: list[tuple[bytes, bytes, bytes, list[bytes]]] = [
        (name32(artefact), digest32(fresh.digest), cid_bytes(random_cid()), [])
    ]
    moves = [
        (name32(artefact), digest32(fresh.digest), name32("validate")),
        (name32(artefact), digest32(existing.digest), name32("deploy")),
    ]
    fn = client._contract.functions.batch(cid_bytes(random_cid()), regs, moves)
    sender = project.admin.address
    tx = fn.build_transaction(
        {"from": sender, "gas": 500_000, "nonce": client._nonce(), "chainId": client.chain_id}
        | client._fees()
    )
    before = _snapshot(project.ledger, [existing, fresh])
    tx_hash = client._w3.eth.send_raw_transaction(
        project.admin.sign_transaction(tx).raw_transaction
    )
    receipt = client._w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert _snapshot(project.ledger, [existing, fresh]) == before


# ---------------------------------------------------------------------------- reads


def test_reads(project: Project) -> None:
    ledger = project.ledger
    assert ledger.role_names() == ROLES
    assert ledger.roles_of(project.admin.address) == ROLES
    for role, member in project.members.items():
        assert ledger.roles_of(member.account) == (role,)
        assert member.roles_of(member.account) == (role,)
    assert ledger.roles_of(project.outsider.account) == ()
    assert ledger.admin() == project.admin.address
    assert project.outsider.admin() == project.admin.address
    artefact = project.artefact("dataset")
    assert ledger.artefact_kind(artefact) == "dataset"
    assert ledger.artefact_kind(unique("art")) is None
    ref = register(ledger, artefact)
    assert ledger.version(ref) == VersionState(artefact, ref.digest, "dataset", "raw")
    assert ledger.version(VersionRef(artefact, random_digest())) is None
    assert ledger.version(VersionRef(unique("art"), ref.digest)) is None
    assert project.outsider.version(ref) == ledger.version(ref)
    with pytest.raises(InputError, match="not a sha256 digest"):
        ledger.version(VersionRef(artefact, "abc"))
    assert ledger.address == project.outsider.address
    assert project.outsider.account != ledger.account


# ---------------------------------------------------------------------------- events


def test_history_rebuilds_history_and_lineage(fresh_ledger: tuple[Ledger, Any]) -> None:
    from eth_account import Account

    admin, admin_account = fresh_ledger
    a = admin_account.address
    admin.define_roles(["data-admin", "verifier"])
    admin.define_kind(DATASET)
    admin.define_artefacts({"raw-set": "dataset", "clean-set": "dataset"})
    admin.grant_role("data-admin", a)
    verifier = admin.with_signer(Account.create())
    admin.grant_role("verifier", verifier.account)
    v = verifier.account

    raw = VersionRef("raw-set", random_digest())
    clean = VersionRef("clean-set", random_digest())
    ghost = VersionRef("raw-set", random_digest())  # cited as an input, never registered
    cids = {name: cid_of(name.encode()) for name in ("raw", "clean", "r1", "r2", "r3", "r4")}
    r1 = admin.submit(cids["r1"], [Registration(raw, cids["raw"])], [])
    r2 = verifier.submit(cids["r2"], [], [Move(raw, "validate")])
    r3 = admin.submit(
        cids["r3"], [Registration(clean, cids["clean"], (raw, ghost))], [Move(clean, "validate")]
    )
    r4 = verifier.submit(cids["r4"], [], [Move(raw, "reject")])
    admin.revoke_role("verifier", v)

    events = admin.history()
    summary = [(e.name, e.args) for e in events]
    assert summary == [
        ("AdminTransferred", {"previous": ZERO, "admin": a}),
        ("RoleDefined", {"role": "data-admin", "bit": 0}),
        ("RoleDefined", {"role": "verifier", "bit": 1}),
        (
            "KindDefined",
            {
                "kind": "dataset",
                "states": ["raw", "validated", "rejected"],
                "initial": 0,
                "registerRoles": ["data-admin"],
                "consumable": [],
            },
        ),
        (
            "TransitionDefined",
            {
                "kind": "dataset",
                "transition": "validate",
                "sources": ["raw"],
                "target": "validated",
                "roles": ["data-admin", "verifier"],
            },
        ),
        (
            "TransitionDefined",
            {
                "kind": "dataset",
                "transition": "reject",
                "sources": ["raw", "validated"],
                "target": "rejected",
                "roles": ["verifier"],
            },
        ),
        ("ArtefactDefined", {"artefact": "raw-set", "kind": "dataset"}),
        ("ArtefactDefined", {"artefact": "clean-set", "kind": "dataset"}),
        ("RoleGranted", {"role": "data-admin", "account": a, "by": a}),
        ("RoleGranted", {"role": "verifier", "account": v, "by": a}),
        (
            "Registered",
            {
                "artefact": "raw-set",
                "digest": raw.digest,
                "actor": a,
                "cid": cids["raw"],
                "recordCid": cids["r1"],
                "roles": 1,
                "inputs": [],
            },
        ),
        # Transitioned carries state *indices* into the kind's states (see KindDefined).
        (
            "Transitioned",
            {
                "artefact": "raw-set",
                "digest": raw.digest,
                "actor": v,
                "transition": "validate",
                "source": 0,
                "target": 1,
                "recordCid": cids["r2"],
                "roles": 2,
            },
        ),
        (
            "Registered",
            {
                "artefact": "clean-set",
                "digest": clean.digest,
                "actor": a,
                "cid": cids["clean"],
                "recordCid": cids["r3"],
                "roles": 1,
                # A registered input resolves to its version; an unknown key to None.
                "inputs": [{"artefact": "raw-set", "digest": raw.digest}, None],
            },
        ),
        (
            "Transitioned",
            {
                "artefact": "clean-set",
                "digest": clean.digest,
                "actor": a,
                "transition": "validate",
                "source": 0,
                "target": 1,
                "recordCid": cids["r3"],
                "roles": 1,
            },
        ),
        (
            "Transitioned",
            {
                "artefact": "raw-set",
                "digest": raw.digest,
                "actor": v,
                "transition": "reject",
                "source": 1,
                "target": 2,
                "recordCid": cids["r4"],
                "roles": 2,
            },
        ),
        ("RoleRevoked", {"role": "verifier", "account": v, "by": a}),
    ]

    # Chain order, receipts and block times line up.
    positions = [(e.block, e.log_index) for e in events]
    assert positions == sorted(positions)
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    by_tx = {e.tx_hash: e for e in events}
    for receipt in (r1, r2, r3, r4):
        assert by_tx[receipt.tx_hash].block == receipt.block
        assert by_tx[receipt.tx_hash].timestamp == receipt.timestamp

    # Folding the events alone gives every version's state and lineage as the contract has them.
    rebuilt = _fold(events)
    assert rebuilt == {
        raw: (
            "rejected",
            [],
            [("register", a, None, "raw"), ("validate", v, "raw", "validated"),
             ("reject", v, "validated", "rejected")],
        ),
        clean: (
            "validated",
            [raw, None],
            [("register", a, None, "raw"), ("validate", a, "raw", "validated")],
        ),
    }  # fmt: skip
    for ref, (current, _, _) in rebuilt.items():
        assert state(admin, ref) == current

    # A later window still resolves inputs registered before it.
    window = admin.history(from_block=r3.block)
    assert [e.name for e in window] == ["Registered", "Transitioned", "Transitioned", "RoleRevoked"]
    assert window[0].args["inputs"] == [{"artefact": "raw-set", "digest": raw.digest}, None]


Fold = dict[VersionRef, tuple[str, list[VersionRef | None], list[tuple[str, str, str | None, str]]]]


def _fold(events: list[Any]) -> Fold:
    """Each version's state, inputs and steps, from the events alone (state indices → names)."""
    states: dict[str, list[str]] = {}
    initial: dict[str, str] = {}
    kinds: dict[str, str] = {}
    out: Fold = {}
    for e in events:
        args = e.args
        if e.name == "KindDefined":
            states[args["kind"]] = list(args["states"])
            initial[args["kind"]] = args["states"][args["initial"]]
        elif e.name == "ArtefactDefined":
            kinds[args["artefact"]] = args["kind"]
        elif e.name == "Registered":
            ref = VersionRef(args["artefact"], args["digest"])
            first = initial[kinds[ref.artefact]]
            inputs = [i and VersionRef(i["artefact"], i["digest"]) for i in args["inputs"]]
            out[ref] = (first, inputs, [("register", args["actor"], None, first)])
        elif e.name == "Transitioned":
            ref = VersionRef(args["artefact"], args["digest"])
            names = states[kinds[ref.artefact]]
            current, inputs, steps = out[ref]
            source, target = names[args["source"]], names[args["target"]]
            assert source == current
            steps.append((args["transition"], args["actor"], source, target))
            out[ref] = (target, inputs, steps)
    return out


def test_history_resolves_an_input_registered_later(project: Project) -> None:
    artefact = project.artefact("dataset")
    later = VersionRef(artefact, random_digest())
    child = register(project.ledger, artefact, inputs=(later,))  # the contract does not check
    project.ledger.submit(random_cid(), [Registration(later, random_cid())], [])
    (event,) = [
        e
        for e in project.ledger.history()
        if e.name == "Registered" and e.args["digest"] == child.digest
    ]
    assert event.args["inputs"] == [{"artefact": artefact, "digest": later.digest}]
