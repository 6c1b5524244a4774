//! Snapshots.
use crate::{Population, Result};
/// Save.
pub fn save(_p: &Population, _path: &std::path::Path) -> Result<()> { Ok(()) }
/// Load.
pub fn load(_path: &std::path::Path) -> Result<Population> { Err(crate::Error::Config("todo".into())) }
