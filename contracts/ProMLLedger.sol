// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ProMLLedger: the shared provenance ledger of one proml project.
/// @notice Artefact-as-a-State-Machine. Every version of an artefact (one exact content, named by
/// its sha256 digest) is an instance of its artefact's *kind*: a state machine whose states,
/// initial state and role-guarded transitions the project admin defines as data. The contract
/// enforces every rule itself; a proml client is not trusted.
/// @dev Storage holds what the rules need and what the gate must not take on trust: per version,
/// one slot packs its kind, its current state, its number of steps and a running hash ("head")
/// of every step (registration and transitions) with the fields its event carries. The whole
/// history lives in events, from which any client rebuilds history and lineage; a client checks
/// the events it read by recomputing the head and comparing it with `versionOf` (storage), so a
/// local copy of the events (an index) that was edited, pruned or padded is detected.
///
/// Step chain: head_0 = 0; head_n = trunc192(keccak256(abi.encode(head_{n-1}, action, actor,
/// source, target, roles, keccak256(recordCid), cidHash, inputsHash))) where `action` is
/// "register" or the transition's name, `source` is 255 for a registration, `roles` is the bitmap
/// of the actor's roles that allowed the step (bit i = roleNames()[i]), and for a registration
/// cidHash = keccak256(cid) and inputsHash = keccak256(abi.encodePacked(inputs)) (both zero for a
/// transition). trunc192 keeps the high 192 bits (the low 64 bits of the slot hold kind, state and
/// step count).
/// Names (artefacts, kinds, states, transitions, roles) are short ASCII strings right-padded
/// into bytes32 so that events stay readable without a lookup.
contract ProMLLedger {
    // ------------------------------------------------------------------ errors

    error NotAdmin(address caller);
    error NotPendingAdmin(address caller);
    error ZeroAddress();
    error EmptyName();
    error RoleExists(bytes32 role);
    error UnknownRole(bytes32 role);
    error TooManyRoles();
    error KindInUse(bytes32 kind);
    error UnknownKind(bytes32 kind);
    error TooManyKinds();
    error NoStates(bytes32 kind);
    error TooManyStates(bytes32 kind);
    error DuplicateState(bytes32 kind, bytes32 state);
    error BadInitialState(bytes32 kind, uint8 initial);
    error UnknownState(bytes32 kind, bytes32 state);
    error NoRoles(bytes32 kind, bytes32 transition);
    error NoSourceStates(bytes32 kind, bytes32 transition);
    error DuplicateTransition(bytes32 kind, bytes32 transition);
    error UnknownTransition(bytes32 kind, bytes32 transition);
    error MissingRole(address account, bytes32 kind, bytes32 action);
    error WrongState(bytes32 artefact, bytes32 digest, bytes32 transition, bytes32 state);
    error DuplicateVersion(bytes32 artefact, bytes32 digest);
    error UnknownVersion(bytes32 artefact, bytes32 digest);
    error UnknownArtefact(bytes32 artefact);
    error ArtefactExists(bytes32 artefact, bytes32 kind);
    error EmptyBatch();
    error LengthMismatch();

    // ------------------------------------------------------------------ events

    event AdminTransferStarted(address indexed admin, address indexed pending);
    event AdminTransferred(address indexed previous, address indexed admin);
    event RoleDefined(bytes32 indexed role, uint8 bit);
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed by);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed by);
    /// An artefact bound to a kind; a later one for the same artefact rebinds it (new versions
    /// use the new kind, recorded versions keep theirs).
    event ArtefactDefined(bytes32 indexed artefact, bytes32 indexed kind);
    /// A kind (re)defined; a later one for the same kind replaces its rules (only possible while
    /// no version of the kind exists). `consumable`: the states a consumer accepts by default.
    event KindDefined(
        bytes32 indexed kind, bytes32[] states, uint8 initial, bytes32[] registerRoles, bytes32[] consumable
    );
    event TransitionDefined(
        bytes32 indexed kind, bytes32 indexed transition, bytes32[] sources, bytes32 target, bytes32[] roles
    );
    /// A new version entered its kind's initial state. `inputs` are the version keys
    /// (keccak256(artefact ‖ digest)) it was derived from: the lineage. `roles`: the bitmap of
    /// the actor's roles that allowed it, as checked at that moment.
    event Registered(
        bytes32 indexed artefact,
        bytes32 indexed digest,
        address indexed actor,
        bytes cid,
        bytes recordCid,
        bytes32[] inputs,
        uint256 roles
    );
    /// States are indices into the kind's `states` (see KindDefined): names would cost two
    /// storage reads per transition. `roles` as for Registered.
    event Transitioned(
        bytes32 indexed artefact,
        bytes32 indexed digest,
        address indexed actor,
        bytes32 transition,
        uint8 source,
        uint8 target,
        bytes recordCid,
        uint256 roles
    );

    // ------------------------------------------------------------------ types

    struct TransitionDef {
        bytes32 name;
        bytes32[] sources;
        bytes32 target;
        bytes32[] roles;
    }

    struct Registration {
        bytes32 artefact;
        bytes32 digest;
        bytes cid;
        bytes32[] inputs;
    }

    struct Move {
        bytes32 artefact;
        bytes32 digest;
        bytes32 transition;
    }

    // ------------------------------------------------------------------ storage

    uint256 private constant MAX_ROLES = 128;
    uint256 private constant MAX_STATES = 64;
    uint256 private constant ROLE_MASK = (uint256(1) << 128) - 1;
    uint256 private constant STATE_MASK = (uint256(1) << 64) - 1;
    /// Set in a kind's packed word once a version of the kind exists: its rules are then fixed.
    uint256 private constant USED = uint256(1) << 255;
    /// A version's head: the high 192 bits of its slot.
    uint256 private constant HEAD_MASK = ~uint256(0) << 64;
    uint256 private constant STEPS_MASK = (uint256(1) << 40) - 1;
    uint256 private constant NO_STATE = 255;

    address public admin;
    address public pendingAdmin;

    /// role name => bit index + 1 (0: undefined)
    mapping(bytes32 => uint256) private _roleBit;
    bytes32[] private _roleNames;
    /// account => bitmap of held roles (bit i = _roleNames[i])
    mapping(address => uint256) private _rolesOf;

    /// kind name => packed: index+1 (16) | stateCount (8) | initial (8) | registerRoles (128) |
    /// consumable states (64) at bit 160 | USED at bit 255
    mapping(bytes32 => uint256) private _kinds;
    bytes32[] private _kindNames;
    mapping(uint256 => bytes32[]) private _kindStates;
    mapping(uint256 => bytes32[]) private _kindTransitions;
    /// kind index+1 => transition name => packed: sourceMask (64) | target (8) | roleMask (128) at bit 80
    mapping(uint256 => mapping(bytes32 => uint256)) private _transitions;

    /// artefact name => a copy of its kind's packed word; one storage read gives a registration
    /// everything it needs. A kind's word changes only while the kind is unused, and then every
    /// copy is rewritten (see `_kindArtefacts`). The copy's USED bit means "the kind's own word
    /// is marked USED already".
    mapping(bytes32 => uint256) private _artefacts;
    /// kind index+1 => artefacts ever bound to it (an entry may be stale after a rebind)
    mapping(uint256 => bytes32[]) private _kindArtefacts;
    /// version key => packed: kind index+1 (16) | state (8) | steps (40) | head (192) at bit 64;
    /// 0 means "not registered"
    mapping(bytes32 => uint256) private _versions;

    constructor() {
        admin = msg.sender;
        emit AdminTransferred(address(0), msg.sender);
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    // ------------------------------------------------------------------ admin

    /// @notice Start handing the admin role to `next`; it takes effect when `next` accepts.
    function transferAdmin(address next) external onlyAdmin {
        if (next == address(0)) revert ZeroAddress();
        pendingAdmin = next;
        emit AdminTransferStarted(msg.sender, next);
    }

    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin(msg.sender);
        emit AdminTransferred(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    function defineRoles(bytes32[] calldata names) external onlyAdmin {
        for (uint256 i = 0; i < names.length; ++i) {
            bytes32 name = names[i];
            if (name == bytes32(0)) revert EmptyName();
            if (_roleBit[name] != 0) revert RoleExists(name);
            uint256 bit = _roleNames.length;
            if (bit >= MAX_ROLES) revert TooManyRoles();
            _roleNames.push(name);
            _roleBit[name] = bit + 1;
            emit RoleDefined(name, uint8(bit));
        }
    }

    /// @notice Grant `role` to `account`; granting a held role changes nothing and emits nothing.
    function grantRole(bytes32 role, address account) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        uint256 mask = _maskOf(role);
        uint256 held = _rolesOf[account];
        if (held & mask != 0) return;
        _rolesOf[account] = held | mask;
        emit RoleGranted(role, account, msg.sender);
    }

    function revokeRole(bytes32 role, address account) external onlyAdmin {
        uint256 mask = _maskOf(role);
        uint256 held = _rolesOf[account];
        if (held & mask == 0) return;
        _rolesOf[account] = held & ~mask;
        emit RoleRevoked(role, account, msg.sender);
    }

    /// @notice Define a kind (state machine), or redefine one no version of which exists yet.
    /// Once a version of a kind is registered its rules are fixed (`KindInUse`): a changed machine
    /// is then a new kind (e.g. `dataset-v2`) that artefacts are rebound to, so recorded versions
    /// keep the rules they were made under.
    function defineKind(
        bytes32 name,
        bytes32[] calldata states,
        uint8 initial,
        bytes32[] calldata registerRoles,
        bytes32[] calldata consumable,
        TransitionDef[] calldata transitions
    ) external onlyAdmin {
        if (name == bytes32(0)) revert EmptyName();
        uint256 existing = _kinds[name];
        if (existing & USED != 0) revert KindInUse(name);
        if (states.length == 0) revert NoStates(name);
        if (states.length > MAX_STATES) revert TooManyStates(name);
        if (initial >= states.length) revert BadInitialState(name, initial);
        for (uint256 i = 0; i < states.length; ++i) {
            if (states[i] == bytes32(0)) revert EmptyName();
            for (uint256 j = 0; j < i; ++j) {
                if (states[j] == states[i]) revert DuplicateState(name, states[i]);
            }
        }
        uint256 index1;
        if (existing == 0) {
            if (_kindNames.length >= type(uint16).max - 1) revert TooManyKinds();
            index1 = _kindNames.length + 1;
            _kindNames.push(name);
        } else {
            // An unused kind: drop its old transitions, keep its index (artefacts point at it).
            index1 = existing & 0xffff;
            bytes32[] storage old = _kindTransitions[index1];
            for (uint256 t = 0; t < old.length; ++t) {
                delete _transitions[index1][old[t]];
            }
            delete _kindTransitions[index1];
        }
        _kindStates[index1] = states;
        uint256 registerMask = _masksOf(registerRoles);
        if (registerMask == 0) revert NoRoles(name, bytes32("register"));
        uint256 consumableMask = 0;
        for (uint256 c = 0; c < consumable.length; ++c) {
            consumableMask |= uint256(1) << _stateIndex(name, states, consumable[c]);
        }
        uint256 word = index1 | (states.length << 16) | (uint256(initial) << 24) | (registerMask << 32)
            | (consumableMask << 160);
        _kinds[name] = word;
        if (existing != 0) {
            bytes32[] storage bound = _kindArtefacts[index1];
            for (uint256 a = 0; a < bound.length; ++a) {
                if (_artefacts[bound[a]] & 0xffff == index1) _artefacts[bound[a]] = word;
            }
        }
        emit KindDefined(name, states, initial, registerRoles, consumable);

        for (uint256 t = 0; t < transitions.length; ++t) {
            TransitionDef calldata def = transitions[t];
            if (def.name == bytes32(0)) revert EmptyName();
            if (_transitions[index1][def.name] != 0) revert DuplicateTransition(name, def.name);
            if (def.sources.length == 0) revert NoSourceStates(name, def.name);
            uint256 sourceMask = 0;
            for (uint256 s = 0; s < def.sources.length; ++s) {
                sourceMask |= uint256(1) << _stateIndex(name, states, def.sources[s]);
            }
            uint256 target = _stateIndex(name, states, def.target);
            uint256 roleMask = _masksOf(def.roles);
            if (roleMask == 0) revert NoRoles(name, def.name);
            _transitions[index1][def.name] = sourceMask | (target << 64) | (roleMask << 80);
            _kindTransitions[index1].push(def.name);
            emit TransitionDefined(name, def.name, def.sources, def.target, def.roles);
        }
    }

    /// @notice Bind artefacts to kinds. Only the admin decides an artefact's kind, once: a
    /// registrant cannot pick a laxer machine for it.
    function defineArtefacts(bytes32[] calldata names, bytes32[] calldata kinds) external onlyAdmin {
        if (names.length != kinds.length) revert LengthMismatch();
        for (uint256 i = 0; i < names.length; ++i) {
            bytes32 name = names[i];
            if (name == bytes32(0)) revert EmptyName();
            uint256 k = _kinds[kinds[i]];
            if (k == 0) revert UnknownKind(kinds[i]);
            uint256 bound = _artefacts[name];
            if (bound != 0) revert ArtefactExists(name, _kindNames[(bound & 0xffff) - 1]);
            _artefacts[name] = k;
            _kindArtefacts[k & 0xffff].push(name);
            emit ArtefactDefined(name, kinds[i]);
        }
    }

    /// @notice Bind a defined artefact to another kind (e.g. its kind's successor `dataset-v2`).
    /// Versions registered before keep the kind they were registered under; new versions use
    /// `kind`. Rebinding to the current kind changes nothing and emits nothing.
    function rebindArtefact(bytes32 name, bytes32 kind) external onlyAdmin {
        uint256 bound = _artefacts[name];
        if (bound == 0) revert UnknownArtefact(name);
        uint256 k = _kinds[kind];
        if (k == 0) revert UnknownKind(kind);
        if (bound & 0xffff == k & 0xffff) return;
        _artefacts[name] = k;
        _kindArtefacts[k & 0xffff].push(name);
        emit ArtefactDefined(name, kind);
    }

    // ------------------------------------------------------------------ versions

    /// @notice Register a new version of `artefact`; it enters the kind's initial state.
    function register(
        bytes32 artefact,
        bytes32 digest,
        bytes calldata cid,
        bytes calldata recordCid,
        bytes32[] calldata inputs
    ) external {
        _register(_rolesOf[msg.sender], artefact, digest, cid, recordCid, inputs);
    }

    /// @notice Fire `transition` on the version (`artefact`, `digest`).
    function transition(bytes32 artefact, bytes32 digest, bytes32 name, bytes calldata recordCid) external {
        _transition(_rolesOf[msg.sender], artefact, digest, name, recordCid);
    }

    /// @notice Apply registrations, then moves, in order, in one transaction: all or nothing.
    /// Every operation shares the one provenance record `recordCid`.
    function batch(bytes calldata recordCid, Registration[] calldata registrations, Move[] calldata moves)
        external
    {
        if (registrations.length + moves.length == 0) revert EmptyBatch();
        uint256 roles = _rolesOf[msg.sender];
        for (uint256 i = 0; i < registrations.length; ++i) {
            Registration calldata r = registrations[i];
            _register(roles, r.artefact, r.digest, r.cid, recordCid, r.inputs);
        }
        for (uint256 i = 0; i < moves.length; ++i) {
            Move calldata m = moves[i];
            _transition(roles, m.artefact, m.digest, m.transition, recordCid);
        }
    }

    // ------------------------------------------------------------------ reads

    function versionKey(bytes32 artefact, bytes32 digest) public pure returns (bytes32 key) {
        assembly {
            mstore(0x00, artefact)
            mstore(0x20, digest)
            key := keccak256(0x00, 0x40)
        }
    }

    /// @notice A version's kind, current state, number of steps and step-chain head (see the
    /// contract's notes); `exists` is false for an unknown version.
    function versionOf(bytes32 artefact, bytes32 digest)
        external
        view
        returns (bool exists, bytes32 kind, bytes32 state, uint256 steps, bytes32 head)
    {
        uint256 v = _versions[versionKey(artefact, digest)];
        if (v == 0) return (false, bytes32(0), bytes32(0), 0, bytes32(0));
        uint256 index1 = v & 0xffff;
        return (
            true,
            _kindNames[index1 - 1],
            _kindStates[index1][(v >> 16) & 0xff],
            (v >> 24) & STEPS_MASK,
            bytes32(v & HEAD_MASK)
        );
    }

    /// @notice The packed storage words of many versions at once (0: unknown), for a client that
    /// checks a whole history in one call. Layout as `_versions`.
    function versionWords(bytes32[] calldata keys) external view returns (uint256[] memory words) {
        words = new uint256[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            words[i] = _versions[keys[i]];
        }
    }

    function artefactKind(bytes32 artefact) external view returns (bytes32) {
        uint256 k = _artefacts[artefact];
        return k == 0 ? bytes32(0) : _kindNames[(k & 0xffff) - 1];
    }

    function kindNames() external view returns (bytes32[] memory) {
        return _kindNames;
    }

    /// @notice A kind's rules. `inUse`: a version of it exists, so its rules are fixed.
    function kindOf(bytes32 name)
        external
        view
        returns (
            bytes32[] memory states,
            uint8 initial,
            bytes32[] memory registerRoles,
            bytes32[] memory transitions,
            bytes32[] memory consumable,
            bool inUse
        )
    {
        uint256 k = _kinds[name];
        if (k == 0) revert UnknownKind(name);
        uint256 index1 = k & 0xffff;
        states = _kindStates[index1];
        uint256 mask = (k >> 160) & STATE_MASK;
        uint256 count = 0;
        for (uint256 s = 0; s < states.length; ++s) {
            if ((mask >> s) & 1 == 1) ++count;
        }
        consumable = new bytes32[](count);
        count = 0;
        for (uint256 s = 0; s < states.length; ++s) {
            if ((mask >> s) & 1 == 1) consumable[count++] = states[s];
        }
        return (
            states,
            uint8(k >> 24),
            _namesOf((k >> 32) & ROLE_MASK),
            _kindTransitions[index1],
            consumable,
            k & USED != 0
        );
    }

    function transitionOf(bytes32 kind, bytes32 name)
        external
        view
        returns (bytes32[] memory sources, bytes32 target, bytes32[] memory roles)
    {
        uint256 k = _kinds[kind];
        if (k == 0) revert UnknownKind(kind);
        uint256 index1 = k & 0xffff;
        uint256 t = _transitions[index1][name];
        if (t == 0) revert UnknownTransition(kind, name);
        bytes32[] storage states = _kindStates[index1];
        uint256 count = 0;
        for (uint256 s = 0; s < states.length; ++s) {
            if ((t >> s) & 1 == 1) ++count;
        }
        sources = new bytes32[](count);
        count = 0;
        for (uint256 s = 0; s < states.length; ++s) {
            if ((t >> s) & 1 == 1) sources[count++] = states[s];
        }
        return (sources, states[(t >> 64) & 0xff], _namesOf((t >> 80) & ROLE_MASK));
    }

    function roleNames() external view returns (bytes32[] memory) {
        return _roleNames;
    }

    function rolesOf(address account) external view returns (bytes32[] memory) {
        return _namesOf(_rolesOf[account]);
    }

    function hasRole(bytes32 role, address account) external view returns (bool) {
        uint256 bit = _roleBit[role];
        return bit != 0 && (_rolesOf[account] >> (bit - 1)) & 1 == 1;
    }

    // ------------------------------------------------------------------ internals

    function _register(
        uint256 roles,
        bytes32 artefact,
        bytes32 digest,
        bytes calldata cid,
        bytes calldata recordCid,
        bytes32[] calldata inputs
    ) private {
        uint256 k = _artefacts[artefact];
        if (k == 0) revert UnknownArtefact(artefact);
        uint256 index1 = k & 0xffff;
        // Held roles fit in 128 bits, so the consumable bits above the role mask drop out.
        uint256 authorised = roles & (k >> 32);
        if (authorised == 0) revert MissingRole(msg.sender, _kindNames[index1 - 1], bytes32("register"));
        bytes32 key = versionKey(artefact, digest);
        if (_versions[key] != 0) revert DuplicateVersion(artefact, digest);
        // Inputs are recorded, not checked here: a storage read per input would cost 2,100 gas
        // and still could not make a lineage claim true. `proml verify --deep` checks that every
        // input is a registered version in an accepted state.
        uint256 initial = (k >> 24) & 0xff;
        uint256 head = _head(
            0,
            bytes32("register"),
            NO_STATE,
            initial,
            authorised,
            _hash(recordCid),
            _hash(cid),
            _hashKeys(inputs)
        );
        _versions[key] = head | (uint256(1) << 24) | (initial << 16) | index1;
        if (k & USED == 0) {
            // The kind's first version (through this binding): its rules are fixed from now on.
            _artefacts[artefact] = k | USED;
            bytes32 kindName = _kindNames[index1 - 1];
            _kinds[kindName] |= USED;
        }
        emit Registered(artefact, digest, msg.sender, cid, recordCid, inputs, authorised);
    }

    function _transition(uint256 roles, bytes32 artefact, bytes32 digest, bytes32 name, bytes calldata recordCid)
        private
    {
        bytes32 key = versionKey(artefact, digest);
        uint256 v = _versions[key];
        if (v == 0) revert UnknownVersion(artefact, digest);
        uint256 index1 = v & 0xffff;
        uint256 t = _transitions[index1][name];
        if (t == 0) revert UnknownTransition(_kindNames[index1 - 1], name);
        uint256 state = (v >> 16) & 0xff;
        if ((t >> state) & 1 == 0) revert WrongState(artefact, digest, name, _kindStates[index1][state]);
        uint256 authorised = roles & (t >> 80);
        if (authorised == 0) revert MissingRole(msg.sender, _kindNames[index1 - 1], name);
        uint256 target = (t >> 64) & 0xff;
        uint256 head = _head(v & HEAD_MASK, name, state, target, authorised, _hash(recordCid), 0, 0);
        uint256 steps = ((v >> 24) & STEPS_MASK) + 1;
        _versions[key] = head | (steps << 24) | (target << 16) | index1;
        emit Transitioned(artefact, digest, msg.sender, name, uint8(state), uint8(target), recordCid, authorised);
    }

    /// The next step-chain head (see the contract's notes): keccak256 of nine words, truncated.
    /// Written in assembly over scratch memory that is not kept (the free memory pointer does
    /// not move), so the step's event reuses it: about 1,000 gas less than abi.encode.
    function _head(
        uint256 previous,
        bytes32 action,
        uint256 source,
        uint256 target,
        uint256 roles,
        bytes32 recordHash,
        bytes32 cidHash,
        bytes32 inputsHash
    ) private view returns (uint256) {
        uint256 digest;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, previous)
            mstore(add(p, 0x20), action)
            mstore(add(p, 0x40), caller())
            mstore(add(p, 0x60), source)
            mstore(add(p, 0x80), target)
            mstore(add(p, 0xa0), roles)
            mstore(add(p, 0xc0), recordHash)
            mstore(add(p, 0xe0), cidHash)
            mstore(add(p, 0x100), inputsHash)
            digest := keccak256(p, 0x120)
        }
        return digest & HEAD_MASK;
    }

    /// keccak256 of calldata bytes, through scratch memory (see `_head`).
    function _hash(bytes calldata data) private pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, data.offset, data.length)
            digest := keccak256(p, data.length)
        }
    }

    /// keccak256 of the packed keys (abi.encodePacked of a bytes32[]), through scratch memory.
    function _hashKeys(bytes32[] calldata keys) private pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            let size := mul(keys.length, 0x20)
            calldatacopy(p, keys.offset, size)
            digest := keccak256(p, size)
        }
    }

    function _maskOf(bytes32 role) private view returns (uint256) {
        uint256 bit = _roleBit[role];
        if (bit == 0) revert UnknownRole(role);
        return uint256(1) << (bit - 1);
    }

    function _masksOf(bytes32[] calldata roles) private view returns (uint256 mask) {
        for (uint256 i = 0; i < roles.length; ++i) {
            mask |= _maskOf(roles[i]);
        }
    }

    function _namesOf(uint256 mask) private view returns (bytes32[] memory names) {
        uint256 count = 0;
        uint256 total = _roleNames.length;
        for (uint256 i = 0; i < total; ++i) {
            if ((mask >> i) & 1 == 1) ++count;
        }
        names = new bytes32[](count);
        count = 0;
        for (uint256 i = 0; i < total; ++i) {
            if ((mask >> i) & 1 == 1) names[count++] = _roleNames[i];
        }
    }

    function _stateIndex(bytes32 kind, bytes32[] calldata states, bytes32 state) private pure returns (uint256) {
        for (uint256 i = 0; i < states.length; ++i) {
            if (states[i] == state) return i;
        }
        revert UnknownState(kind, state);
    }
}
