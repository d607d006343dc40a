//! A configuration file, as `tessera check` and `serve` read it (no environment overrides).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = tessera::config::parse_str(text, std::path::Path::new("/fuzz/tessera.toml"))
    {
        let _ = tessera::rules::lint::lint(&config);
    }
});
