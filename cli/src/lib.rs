//! The parts of `outpost` that read outside files, as a library so the
//! fuzz targets (`fuzz/`) and the stable corpus replay test call the very
//! code the command runs.

pub mod import;
