//! The container checks (primer 8.2 to 8.4) need the Docker engine; until they speak to
//! it, they say so instead of guessing.

use crate::facts::Facts;
use crate::model::{Finding, Subject};

pub async fn probe(_f: &Facts, _name: &str, _subject: &Subject) -> Finding {
    Finding::skip("needs the Docker engine checks")
}
