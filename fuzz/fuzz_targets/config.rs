//! The configuration loader: any file content must load or be refused with an error, never
//! panic; what loads must pass its own validation.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temporary directory"));
    let file = dir.path().join("estca.toml");
    std::fs::write(&file, data).expect("write the fuzzed file");
    if let Ok(config) = estca::config::Config::load_from(Some(&file), Vec::new()) {
        config.validate().expect("a loaded configuration is valid");
        let _ = config.admin.mode().expect("validated mode");
        let _ = config.database_location();
    }
});
