// SPDX-License-Identifier: GPL-3.0-or-later
//! The `route` label: a path made a template, because raw paths (ids,
//! hashes) would make a series per request. Patterns the user gives
//! (`--metrics-route /api/users/:id/orders`) are tried first; otherwise
//! numeric, UUID and hex segments become `{num}`, `{uuid}`, `{hex}` (and
//! over-long segments `{long}`). At most `cap` distinct routes are kept;
//! past them every new one is [`OVERFLOW`] (counted).

use std::collections::HashMap;
use std::sync::Arc;

/// The route of every path past the cap.
pub const OVERFLOW: &str = "__overflow__";
/// Default cap on distinct routes.
pub const DEFAULT_CAP: usize = 200;
/// Longest segment kept as written.
const MAX_SEGMENT: usize = 64;
/// Paths remembered with their route.
const CACHE: usize = 8192;
/// Segments kept; deeper paths end in `/…`.
const MAX_DEPTH: usize = 12;

/// A user pattern: segments, `:name`, `{name}` or `*` matching any one
/// segment, a final `**` matching the rest.
#[derive(Clone, Debug)]
struct Pattern {
    text: String,
    segs: Vec<Seg>,
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Lit(String),
    Any,
    Rest,
}

impl Pattern {
    fn parse(p: &str) -> Result<Pattern, String> {
        if !p.starts_with('/') {
            return Err(format!(
                "--metrics-route {p:?}: a path pattern starts with /"
            ));
        }
        let parts: Vec<&str> = p[1..].split('/').collect();
        let mut segs = Vec::new();
        for (i, s) in parts.iter().enumerate() {
            segs.push(match *s {
                "**" if i + 1 == parts.len() => Seg::Rest,
                "**" => return Err(format!("--metrics-route {p:?}: ** only at the end")),
                "*" => Seg::Any,
                s if s.starts_with(':') || (s.starts_with('{') && s.ends_with('}')) => Seg::Any,
                s => Seg::Lit(s.to_string()),
            });
        }
        Ok(Pattern {
            text: p.to_string(),
            segs,
        })
    }

    fn matches(&self, parts: &[&str]) -> bool {
        let mut i = 0;
        for s in &self.segs {
            match s {
                Seg::Rest => return true,
                Seg::Any if i < parts.len() => {}
                Seg::Lit(l) if parts.get(i) == Some(&l.as_str()) => {}
                _ => return false,
            }
            i += 1;
        }
        i == parts.len()
    }
}

pub struct Router {
    patterns: Vec<Pattern>,
    /// The distinct routes (at most `cap`); a route's id is its index.
    routes: Vec<Arc<str>>,
    seen: HashMap<Arc<str>, u32>,
    cap: usize,
    /// path → route id, so a path seen before costs one lookup (bounded:
    /// cleared when full).
    cache: HashMap<Box<str>, u32>,
    overflow: Arc<str>,
    /// Paths that got [`OVERFLOW`].
    pub overflowed: u64,
}

/// The id of [`OVERFLOW`] (see [`Router::route_id`]).
pub const OVERFLOW_ID: u32 = u32::MAX;

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_hex_id(s: &str) -> bool {
    s.len() >= 8
        && s.bytes().all(|c| c.is_ascii_hexdigit())
        && s.bytes().any(|c| c.is_ascii_digit())
}

/// The template of one path (no user patterns, no cap).
pub fn template(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() || !path.starts_with('/') {
        // `*` (OPTIONS), authority-form (CONNECT), or nothing
        return if path == "*" {
            "*".into()
        } else {
            "{other}".into()
        };
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path[1..].split('/').enumerate() {
        if i == MAX_DEPTH {
            out.push_str("/…");
            break;
        }
        out.push('/');
        let t = if !seg.is_empty() && seg.bytes().all(|c| c.is_ascii_digit()) {
            "{num}"
        } else if is_uuid(seg) {
            "{uuid}"
        } else if is_hex_id(seg) {
            "{hex}"
        } else if seg.len() > MAX_SEGMENT {
            "{long}"
        } else {
            seg
        };
        out.push_str(t);
    }
    out
}

impl Router {
    pub fn new(patterns: &[String], cap: usize) -> Result<Router, String> {
        Ok(Router {
            patterns: patterns
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_, _>>()?,
            routes: Vec::new(),
            seen: HashMap::new(),
            // ids below OVERFLOW_ID
            cap: cap.min(OVERFLOW_ID as usize),
            cache: HashMap::new(),
            overflow: Arc::from(OVERFLOW),
            overflowed: 0,
        })
    }

    /// The route label of `path` (None: no path, e.g. no request line).
    pub fn route(&mut self, path: Option<&str>) -> String {
        self.route_arc(path)
            .map_or_else(String::new, |r| r.to_string())
    }

    /// [`Router::route`] as a shared string (None: no path).
    pub fn route_arc(&mut self, path: Option<&str>) -> Option<Arc<str>> {
        self.route_id(path).map(|id| self.name(id))
    }

    /// The route of `path` as a small id that stands for it as long as
    /// this router lives ([`Router::name`] gives the label; [`OVERFLOW_ID`]
    /// past the cap). None: no path.
    pub fn route_id(&mut self, path: Option<&str>) -> Option<u32> {
        let path = path?;
        if let Some(&id) = self.cache.get(path) {
            if id == OVERFLOW_ID {
                self.overflowed += 1;
            }
            return Some(id);
        }
        let id = self.resolve(path);
        if self.cache.len() >= CACHE {
            self.cache.clear();
        }
        self.cache.insert(path.into(), id);
        Some(id)
    }

    /// The label of a route id.
    pub fn name(&self, id: u32) -> Arc<str> {
        match self.routes.get(id as usize) {
            Some(r) => r.clone(),
            None => self.overflow.clone(),
        }
    }

    fn resolve(&mut self, path: &str) -> u32 {
        let clean = path.split(['?', '#']).next().unwrap_or("");
        let r = if let Some(rest) = clean.strip_prefix('/') {
            let parts: Vec<&str> = rest.split('/').collect();
            match self.patterns.iter().find(|p| p.matches(&parts)) {
                Some(p) => p.text.clone(),
                None => template(clean),
            }
        } else {
            template(clean)
        };
        if let Some(&id) = self.seen.get(r.as_str()) {
            return id;
        }
        if self.seen.len() < self.cap {
            let id = self.routes.len() as u32;
            let r: Arc<str> = r.into();
            self.routes.push(r.clone());
            self.seen.insert(r, id);
            return id;
        }
        self.overflowed += 1;
        OVERFLOW_ID
    }

    pub fn distinct(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_placeholders() {
        for (p, t) in [
            ("/", "/"),
            ("/users/42", "/users/{num}"),
            ("/users/42/orders/7?x=1", "/users/{num}/orders/{num}"),
            ("/o/123e4567-e89b-12d3-a456-426614174000", "/o/{uuid}"),
            ("/blob/9f86d081884c7d65", "/blob/{hex}"),
            ("/blob/deadbeefcafe", "/blob/deadbeefcafe"), // no digit: a word
            ("/static/app.js", "/static/app.js"),
            ("/a//b/", "/a//b/"),
            ("*", "*"),
            ("example.com:443", "{other}"),
            ("", "{other}"),
        ] {
            assert_eq!(template(p), t, "{p}");
        }
        let long = format!("/x/{}", "a".repeat(100));
        assert_eq!(template(&long), "/x/{long}");
        let deep = "/a".repeat(20);
        assert!(template(&deep).ends_with("/…"));
    }

    #[test]
    fn user_patterns_first() {
        let mut r = Router::new(
            &[
                "/api/users/:id/orders".into(),
                "/files/**".into(),
                "/v/{ver}/x".into(),
            ],
            10,
        )
        .unwrap();
        assert_eq!(
            r.route(Some("/api/users/bob/orders")),
            "/api/users/:id/orders"
        );
        assert_eq!(
            r.route(Some("/api/users/bob/orders/1")),
            "/api/users/bob/orders/{num}"
        );
        assert_eq!(r.route(Some("/files/a/b/c.txt")), "/files/**");
        assert_eq!(r.route(Some("/v/2/x?q")), "/v/{ver}/x");
        assert_eq!(r.route(None), "");
        assert!(Router::new(&["nope".into()], 1).is_err());
        assert!(Router::new(&["/a/**/b".into()], 1).is_err());
    }

    #[test]
    fn the_cap_holds_and_overflow_is_counted() {
        let mut r = Router::new(&[], 3).unwrap();
        for i in 0..10 {
            r.route(Some(&format!("/page{i}")));
        }
        assert_eq!(r.distinct(), 3);
        assert_eq!(r.overflowed, 7);
        assert_eq!(r.route(Some("/page1")), "/page1");
        assert_eq!(r.route(Some("/page9")), OVERFLOW);
    }
}
