//! The fantasy state machine: what each transaction does to the state.
//!
//! Every function checks all of a tx's rules before its first write, so a
//! refused tx leaves the overlay as it found it.

use prost::Message;
use protoblock_proto::v1::{
    self as pb, AccountState, NameOwner, PlayerState, ProjectionState, SeasonPhase, SeasonState, TeamPhase, TeamState,
    data_transition, transaction,
};

use crate::crypto::PublicKey;
use crate::error::TxError;
use crate::params::ChainParams;
use crate::state::{Overlay, keys};

pub const MAX_ID_LEN: usize = 64;
pub const MIN_NAME_LEN: usize = 3;
pub const MAX_NAME_LEN: usize = 32;

/// Folds a fantasy name to its uniqueness key, as the legacy name hash did:
/// upper-case, look-alike characters folded (0→O, 1/L→I, 5→S, 2→Z, 8→B),
/// separators (`.`, `_`, `-`, space) dropped. Only printable ASCII letters,
/// digits and those separators are allowed, so no Unicode confusables exist.
pub fn fold_name(name: &str) -> Result<String, TxError> {
    let len = name.chars().count();
    if !(MIN_NAME_LEN..=MAX_NAME_LEN).contains(&len) {
        return Err(TxError::InvalidName("length must be 3 to 32 characters"));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(TxError::InvalidName("leading or trailing space"));
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let f = match c.to_ascii_uppercase() {
            '.' | '_' | '-' | ' ' => continue,
            '0' => 'O',
            '1' | 'L' => 'I',
            '5' => 'S',
            '2' => 'Z',
            '8' => 'B',
            c @ ('A'..='Z' | '3' | '4' | '6' | '7' | '9') => c,
            _ => return Err(TxError::InvalidName("only letters, digits, '.', '_', '-' and space")),
        };
        out.push(f);
    }
    if out.len() < MIN_NAME_LEN {
        return Err(TxError::InvalidName("fewer than 3 letters or digits"));
    }
    Ok(out)
}

fn check_id(id: &str) -> Result<(), TxError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(TxError::BadId);
    }
    Ok(())
}

fn read<M: Message + Default>(ov: &Overlay<'_>, key: &[u8]) -> Option<M> {
    // Values in the state were written by this code; a decode failure means
    // a corrupt store and is treated as absent rather than panicking.
    ov.get(key).and_then(|v| M::decode(v).ok())
}

fn write<M: Message>(ov: &mut Overlay<'_>, key: Vec<u8>, m: &M) {
    ov.put(key, m.encode_to_vec());
}

pub fn season_state(ov: &Overlay<'_>) -> SeasonState {
    read(ov, &keys::season()).unwrap_or_default()
}

pub fn account(ov: &Overlay<'_>, who: &PublicKey) -> Option<AccountState> {
    read(ov, &keys::account(&who.0))
}

/// Context of the block a tx is applied in.
pub struct TxContext<'a> {
    pub params: &'a ChainParams,
    pub oracle_keys: &'a [PublicKey],
}

/// Applies one decoded tx (its signature and replay window already checked).
pub fn apply_tx(
    ov: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    signer: &PublicKey,
    tx: &pb::Transaction,
) -> Result<(), TxError> {
    match &tx.body {
        None => Err(TxError::MissingBody),
        Some(transaction::Body::Name(n)) => register_name(ov, signer, n),
        Some(transaction::Body::Projection(p)) => project(ov, ctx, signer, p),
        Some(transaction::Body::Transfer(t)) => transfer(ov, signer, t),
        Some(transaction::Body::Data(d)) => {
            if !ctx.oracle_keys.contains(signer) {
                return Err(TxError::NotOracle);
            }
            data(ov, ctx, signer, d)
        }
    }
}

fn register_name(ov: &mut Overlay<'_>, signer: &PublicKey, n: &pb::NameRegistration) -> Result<(), TxError> {
    let folded = fold_name(&n.fantasy_name)?;
    let mut acct = account(ov, signer).unwrap_or_default();
    if !acct.fantasy_name.is_empty() {
        return Err(TxError::AlreadyNamed);
    }
    let nkey = keys::name(&folded);
    if ov.get(&nkey).is_some() {
        return Err(TxError::NameTaken);
    }
    acct.fantasy_name = n.fantasy_name.clone();
    write(ov, keys::account(&signer.0), &acct);
    write(ov, nkey, &NameOwner { key: signer.0.to_vec(), display_name: n.fantasy_name.clone() });
    Ok(())
}

fn project(ov: &mut Overlay<'_>, ctx: &TxContext<'_>, signer: &PublicKey, p: &pb::Projection) -> Result<(), TxError> {
    check_id(&p.player_id)?;
    if p.points > ctx.params.max_points {
        return Err(TxError::PointsOutOfRange);
    }
    match account(ov, signer) {
        Some(a) if !a.fantasy_name.is_empty() => {}
        _ => return Err(TxError::NoName),
    }
    let season = season_state(ov);
    if season.phase() != SeasonPhase::InSeason {
        return Err(TxError::NotInSeason);
    }
    if p.season != season.season || p.week != season.week {
        return Err(TxError::WrongWeek);
    }
    let player: PlayerState = read(ov, &keys::player(&p.player_id)).ok_or(TxError::UnknownPlayer)?;
    let team: TeamState = read(ov, &keys::team(&player.team_id)).unwrap_or_default();
    if team.phase() == TeamPhase::InGame || ov.get(&keys::result(p.season, p.week, &p.player_id)).is_some() {
        return Err(TxError::ProjectionLocked);
    }
    write(ov, keys::projection(p.season, p.week, &p.player_id, &signer.0), &ProjectionState { points: p.points });
    Ok(())
}

fn owner_of_name(ov: &Overlay<'_>, name: &str) -> Result<[u8; 32], TxError> {
    let folded = fold_name(name).map_err(|_| TxError::UnknownName)?;
    let owner: NameOwner = read(ov, &keys::name(&folded)).ok_or(TxError::UnknownName)?;
    owner.key.as_slice().try_into().map_err(|_| TxError::UnknownName)
}

fn transfer(ov: &mut Overlay<'_>, signer: &PublicKey, t: &pb::Transfer) -> Result<(), TxError> {
    if t.amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    let to = owner_of_name(ov, &t.to_name)?;
    let mut from_acct = account(ov, signer).unwrap_or_default();
    if from_acct.balance < t.amount {
        return Err(TxError::InsufficientBalance { have: from_acct.balance, need: t.amount });
    }
    if to == signer.0 {
        return Ok(()); // A transfer to oneself changes nothing but is not an error.
    }
    let mut to_acct: AccountState = read(ov, &keys::account(&to)).unwrap_or_default();
    let new_to = to_acct.balance.checked_add(t.amount).ok_or(TxError::BalanceOverflow)?;
    from_acct.balance -= t.amount;
    to_acct.balance = new_to;
    write(ov, keys::account(&signer.0), &from_acct);
    write(ov, keys::account(&to), &to_acct);
    Ok(())
}

fn data(ov: &mut Overlay<'_>, ctx: &TxContext<'_>, oracle: &PublicKey, d: &pb::DataTransition) -> Result<(), TxError> {
    use data_transition::Kind;
    let mut season = season_state(ov);
    match d.kind.as_ref().ok_or(TxError::MissingBody)? {
        Kind::SeasonStart(s) => {
            let ok = match season.phase() {
                SeasonPhase::Preseason => s.season >= season.season,
                SeasonPhase::InSeason => false,
                SeasonPhase::Offseason => s.season > season.season,
            };
            if !ok {
                return Err(TxError::BadTransition("season start out of order"));
            }
            season = SeasonState { season: s.season, week: 1, phase: SeasonPhase::InSeason as i32 };
            write(ov, keys::season(), &season);
        }
        Kind::Roster(r) => {
            for pt in &r.players {
                check_id(&pt.player_id)?;
                check_id(&pt.team_id)?;
            }
            for pt in &r.players {
                write(ov, keys::player(&pt.player_id), &PlayerState { team_id: pt.team_id.clone() });
                if ov.get(&keys::team(&pt.team_id)).is_none() {
                    write(ov, keys::team(&pt.team_id), &TeamState::default());
                }
            }
        }
        Kind::GameStart(g) => {
            in_week(&season, g.season, g.week)?;
            for t in &g.team_ids {
                check_id(t)?;
                if ov.get(&keys::team(t)).is_none() {
                    return Err(TxError::UnknownTeam);
                }
            }
            for t in &g.team_ids {
                write(ov, keys::team(t), &TeamState { phase: TeamPhase::InGame as i32 });
            }
        }
        Kind::GameResult(g) => {
            in_week(&season, g.season, g.week)?;
            for r in &g.results {
                check_id(&r.player_id)?;
                if r.points > ctx.params.max_points {
                    return Err(TxError::PointsOutOfRange);
                }
                if ov.get(&keys::player(&r.player_id)).is_none() {
                    return Err(TxError::UnknownPlayer);
                }
                if ov.get(&keys::result(g.season, g.week, &r.player_id)).is_some() {
                    return Err(TxError::ResultAlreadyPosted);
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            if !g.results.iter().all(|r| seen.insert(r.player_id.as_str())) {
                return Err(TxError::ResultAlreadyPosted);
            }
            // A payout can only fail on a balance overflow, after earlier
            // payouts were written; roll those back so the tx stays
            // all-or-nothing.
            let savepoint = ov.savepoint();
            for r in &g.results {
                if let Err(e) = pay_out(ov, oracle, g.season, g.week, &r.player_id, r.points) {
                    ov.rollback_to(savepoint);
                    return Err(e);
                }
            }
        }
        Kind::WeekOver(w) => {
            in_week(&season, w.season, w.week)?;
            // Projections left for the week (players without a result) lapse.
            for k in ov.prefix_keys(&keys::projection_week_prefix(w.season, w.week)) {
                ov.delete(k);
            }
            for k in ov.prefix_keys(&[keys::TEAM]) {
                ov.put(k, TeamState::default().encode_to_vec());
            }
            season.week = season.week.checked_add(1).ok_or(TxError::BadTransition("week overflow"))?;
            write(ov, keys::season(), &season);
        }
        Kind::SeasonEnd(s) => {
            if season.phase() != SeasonPhase::InSeason || s.season != season.season {
                return Err(TxError::BadTransition("season end for a season not in progress"));
            }
            season.phase = SeasonPhase::Offseason as i32;
            write(ov, keys::season(), &season);
        }
    }
    Ok(())
}

fn in_week(season: &SeasonState, s: u32, w: u32) -> Result<(), TxError> {
    if season.phase() != SeasonPhase::InSeason {
        return Err(TxError::NotInSeason);
    }
    if s != season.season || w != season.week {
        return Err(TxError::WrongWeek);
    }
    Ok(())
}

/// The legacy distribution rule. For each projection, diff = |result − p|.
/// It is eligible if diff ≤ min(round(mean diff), result). Each eligible
/// projector gets (result − diff) × result / Σ(result − diff), rounded down;
/// what is left of `result` goes to the oracle that posted it. Projections on
/// the player are then cleared.
fn pay_out(
    ov: &mut Overlay<'_>,
    oracle: &PublicKey,
    season: u32,
    week: u32,
    player: &str,
    result: u32,
) -> Result<(), TxError> {
    let prefix = keys::projection_prefix(season, week, player);
    let mut entries: Vec<([u8; 32], u64)> = Vec::new();
    for k in ov.prefix_keys(&prefix) {
        let who: [u8; 32] = match k[prefix.len()..].try_into() {
            Ok(w) => w,
            Err(_) => continue,
        };
        let pts = read::<ProjectionState>(ov, &k).map(|p| p.points).unwrap_or(0);
        entries.push((who, pts as u64));
        ov.delete(k);
    }
    ov.put(keys::result(season, week, player), result.to_be_bytes().to_vec());
    let result = result as u64;
    let mut paid = 0u64;
    if !entries.is_empty() && result > 0 {
        let diffs: Vec<u64> = entries.iter().map(|(_, p)| p.abs_diff(result)).collect();
        let n = diffs.len() as u64;
        let sum_diff: u64 = diffs.iter().sum();
        let mean = (sum_diff + n / 2) / n; // round half up
        let cutoff = mean.min(result);
        let weights: Vec<u64> = diffs.iter().map(|d| if *d <= cutoff { result - d } else { 0 }).collect();
        let total: u64 = weights.iter().sum();
        if total > 0 {
            for ((who, _), w) in entries.iter().zip(&weights) {
                let award = (*w as u128 * result as u128 / total as u128) as u64;
                if award > 0 {
                    credit(ov, who, award)?;
                    paid += award;
                }
            }
        }
    }
    let left = result - paid;
    if left > 0 {
        credit(ov, &oracle.0, left)?;
    }
    Ok(())
}

fn credit(ov: &mut Overlay<'_>, who: &[u8; 32], amount: u64) -> Result<(), TxError> {
    let mut a: AccountState = read(ov, &keys::account(who)).unwrap_or_default();
    a.balance = a.balance.checked_add(amount).ok_or(TxError::BalanceOverflow)?;
    write(ov, keys::account(who), &a);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_name("Bo.Jackson").unwrap(), fold_name("b0_jacks0n").unwrap());
        assert_eq!(fold_name("ALL5").unwrap(), fold_name("a11s").unwrap());
        assert!(fold_name("ab").is_err());
        assert!(fold_name("héllo").is_err());
        assert!(fold_name("...").is_err());
    }
}
