//! The page's log: tracing events to the browser console, level-filtered.
//! A page does not need span trees, so this is a few lines in place of
//! tracing-wasm, which brought tracing-subscriber's span registry
//! (sharded-slab, thread_local) into a package with a size budget. Events
//! print their level, target, message and fields; spans are accepted and
//! not tracked.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber, span};

pub struct ConsoleLog {
    max: Level,
}

impl ConsoleLog {
    pub fn new(max: Level) -> Self {
        Self { max }
    }
}

impl Subscriber for ConsoleLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let m = event.metadata();
        let mut line = format!("{} {}: ", m.level(), m.target());
        event.record(&mut Fields(&mut line));
        let line = wasm_bindgen::JsValue::from(line.trim_end());
        match *m.level() {
            Level::ERROR => web_sys::console::error_1(&line),
            Level::WARN => web_sys::console::warn_1(&line),
            Level::INFO => web_sys::console::info_1(&line),
            _ => web_sys::console::debug_1(&line),
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = match field.name() {
            "message" => write!(self.0, "{value} "),
            name => write!(self.0, "{name}={value} "),
        };
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = match field.name() {
            "message" => write!(self.0, "{value:?} "),
            name => write!(self.0, "{name}={value:?} "),
        };
    }
}
