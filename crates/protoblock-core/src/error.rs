//! Typed rejections. Each says which rule failed, so peers can be scored and
//! users told plainly. Nothing here is produced by a panic.

use crate::hash::Hash32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction is {size} bytes, over the {max}-byte limit")]
    Oversized { size: usize, max: usize },
    #[error("malformed transaction encoding")]
    Malformed,
    #[error("bad signer key: {0}")]
    BadSignerKey(crate::crypto::KeyError),
    #[error("signature is malformed or does not verify")]
    BadSignature,
    #[error("unsupported transaction version {0}")]
    UnsupportedVersion(u32),
    #[error("transaction has no body")]
    MissingBody,
    #[error("nonce is older than the replay window allows")]
    NonceTooOld,
    #[error("nonce is further in the future than the replay window allows")]
    NonceTooNew,
    #[error("transaction was already included (replay)")]
    Replayed,
    #[error("invalid fantasy name: {0}")]
    InvalidName(&'static str),
    #[error("fantasy name is already taken")]
    NameTaken,
    #[error("this key already has a fantasy name")]
    AlreadyNamed,
    #[error("no fantasy name is registered under that name")]
    UnknownName,
    #[error("the signer must register a fantasy name first")]
    NoName,
    #[error("balance {have} is less than {need}")]
    InsufficientBalance { have: u64, need: u64 },
    #[error("transfer amount must be positive")]
    ZeroAmount,
    #[error("balance would overflow")]
    BalanceOverflow,
    #[error("only an oracle key may sign data transitions")]
    NotOracle,
    #[error("no season is in progress")]
    NotInSeason,
    #[error("not the current season and week")]
    WrongWeek,
    #[error("unknown player")]
    UnknownPlayer,
    #[error("unknown team")]
    UnknownTeam,
    #[error("player or team id is empty or too long")]
    BadId,
    #[error("projection locked: the player's game has started or has a result")]
    ProjectionLocked,
    #[error("points out of range")]
    PointsOutOfRange,
    #[error("a result was already posted for that player and week")]
    ResultAlreadyPosted,
    #[error("invalid season transition: {0}")]
    BadTransition(&'static str),
}

impl TxError {
    /// The rule that failed, as a stable snake_case name for programs (the
    /// relay's HTTP answers, the page's JS errors); the message is for people.
    pub fn rule(&self) -> &'static str {
        match self {
            TxError::Oversized { .. } => "oversized",
            TxError::Malformed => "malformed",
            TxError::BadSignerKey(_) => "bad_signer_key",
            TxError::BadSignature => "bad_signature",
            TxError::UnsupportedVersion(_) => "unsupported_version",
            TxError::MissingBody => "missing_body",
            TxError::NonceTooOld => "nonce_too_old",
            TxError::NonceTooNew => "nonce_too_new",
            TxError::Replayed => "replayed",
            TxError::InvalidName(_) => "invalid_name",
            TxError::NameTaken => "name_taken",
            TxError::AlreadyNamed => "already_named",
            TxError::UnknownName => "unknown_name",
            TxError::NoName => "no_name",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::ZeroAmount => "zero_amount",
            TxError::BalanceOverflow => "balance_overflow",
            TxError::NotOracle => "not_oracle",
            TxError::NotInSeason => "not_in_season",
            TxError::WrongWeek => "wrong_week",
            TxError::UnknownPlayer => "unknown_player",
            TxError::UnknownTeam => "unknown_team",
            TxError::BadId => "bad_id",
            TxError::ProjectionLocked => "projection_locked",
            TxError::PointsOutOfRange => "points_out_of_range",
            TxError::ResultAlreadyPosted => "result_already_posted",
            TxError::BadTransition(_) => "bad_transition",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block is {size} bytes, over the {max}-byte limit")]
    Oversized { size: usize, max: usize },
    #[error("malformed block encoding")]
    Malformed,
    #[error("malformed block header")]
    MalformedHeader,
    #[error("unsupported block version {0}")]
    UnsupportedVersion(u32),
    #[error("wrong height: expected {expected}, got {got}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("prev_hash does not link to the parent")]
    BrokenPrevHash,
    #[error("producer is not the oracle key for height {height}")]
    UnauthorizedProducer { height: u64 },
    #[error("header signature is malformed or does not verify")]
    BadSignature,
    #[error("timestamp {got} is not after the parent's {parent}")]
    TimestampNotAfterParent { parent: u64, got: u64 },
    #[error("timestamp {got} is too far ahead of local time {now}")]
    TimestampInFuture { now: u64, got: u64 },
    #[error("{count} transactions, over the limit of {max}")]
    TooManyTxs { count: usize, max: usize },
    #[error("tx_root does not match the transactions")]
    TxRootMismatch,
    #[error("state_root does not match the state after the block (expected {expected}, got {got})")]
    StateRootMismatch { expected: Hash32, got: Hash32 },
    #[error("transaction {index} is invalid: {error}")]
    Tx { index: usize, error: TxError },
    #[error("parent block {0:?} is unknown")]
    UnknownParent(Hash32),
    #[error("block at height {height} is at or below the final height {final_height}")]
    BelowFinality { height: u64, final_height: u64 },
    #[error("block was already found invalid")]
    KnownInvalid,
    #[error("too many side-chain blocks held")]
    SideChainFull,
}

impl BlockError {
    /// The rule that failed, as a stable snake_case name (metrics label
    /// blocks refused by it); a bad tx inside names the tx's rule.
    pub fn rule(&self) -> &'static str {
        match self {
            BlockError::Oversized { .. } => "oversized",
            BlockError::Malformed => "malformed",
            BlockError::MalformedHeader => "malformed_header",
            BlockError::UnsupportedVersion(_) => "unsupported_version",
            BlockError::WrongHeight { .. } => "wrong_height",
            BlockError::BrokenPrevHash => "broken_prev_hash",
            BlockError::UnauthorizedProducer { .. } => "unauthorized_producer",
            BlockError::BadSignature => "bad_signature",
            BlockError::TimestampNotAfterParent { .. } => "timestamp_not_after_parent",
            BlockError::TimestampInFuture { .. } => "timestamp_in_future",
            BlockError::TooManyTxs { .. } => "too_many_txs",
            BlockError::TxRootMismatch => "tx_root_mismatch",
            BlockError::StateRootMismatch { .. } => "state_root_mismatch",
            BlockError::Tx { error, .. } => error.rule(),
            BlockError::UnknownParent(_) => "unknown_parent",
            BlockError::BelowFinality { .. } => "below_finality",
            BlockError::KnownInvalid => "known_invalid",
            BlockError::SideChainFull => "side_chain_full",
        }
    }

    /// Whether the sender provably sent bad data (penalise), as opposed to a
    /// block we merely cannot place yet or that raced finality.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            BlockError::UnknownParent(_)
                | BlockError::BelowFinality { .. }
                | BlockError::SideChainFull
                | BlockError::TimestampInFuture { .. }
        )
    }
}
