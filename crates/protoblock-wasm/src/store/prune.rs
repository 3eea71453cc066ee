//! Pruning: which blocks the next commit drops below the retention window,
//! and the main-chain index record it rewrites (see `WriteBatch::prune_below`).

use protoblock_core::chain::MAX_PRUNED_PER_COMMIT;
use protoblock_core::hash::Hash32;
use protoblock_store::{Store, StoreError};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::IdbKeyRange;

use super::idb::{js, request, to_vec};
use super::{IndexedDbStore, MAIN};

/// What one commit prunes ([`IndexedDbStore::prune_plan`]).
pub(super) struct Prune {
    /// Blocks dropped: the main chain's from the old floor up to `new_floor`.
    pub(super) ids: Vec<Hash32>,
    pub(super) new_floor: u64,
    /// The index record that holds `new_floor`, put again from it.
    pub(super) rewrite: Option<(u64, Vec<u8>)>,
}

impl IndexedDbStore {
    /// What pruning below `below` drops in the next commit: the lowest
    /// blocks held, at most `MAX_PRUNED_PER_COMMIT`, and never above the
    /// stored final height (so no height the commit itself writes).
    pub(super) async fn prune_plan(&self, below: u64) -> Result<Option<Prune>, StoreError> {
        let from = self.floor.get().max(1);
        let Some(head) = self.head().await? else { return Ok(None) };
        let new_floor = below.min(from + MAX_PRUNED_PER_COMMIT as u64).min(head.final_height + 1);
        if new_floor <= from {
            return Ok(None);
        }
        let ids = self.main_ids(from, new_floor - 1).await?;
        // The index record holding `new_floor`, when it starts below it, is
        // put again from `new_floor` (the records keyed below are deleted).
        let main = self.raw_store(MAIN)?;
        let at_or_below = IdbKeyRange::upper_bound(&JsValue::from_f64(new_floor as f64)).map_err(js)?;
        let cursor = main.open_cursor_with_range_and_direction(&at_or_below, web_sys::IdbCursorDirection::Prev);
        let cursor = request(cursor.map_err(js)?).await?;
        let mut rewrite = None;
        if let Some(c) = cursor.dyn_ref::<web_sys::IdbCursorWithValue>() {
            let start = c.key().map_err(js)?.as_f64().ok_or(StoreError::Corrupt("main index key"))? as u64;
            let record = to_vec(&c.value().map_err(js)?)?;
            let skip = usize::try_from(new_floor - start).unwrap_or(usize::MAX).saturating_mul(32);
            if start < new_floor && skip < record.len() {
                rewrite = Some((new_floor, record[skip..].to_vec()));
            }
        }
        Ok(Some(Prune { ids, new_floor, rewrite }))
    }
}
