use serde::Serialize;
/// Placeholder until the tracker lands.
#[derive(Debug, Clone, Serialize)]
pub enum Record {}
