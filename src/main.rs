use std::process::ExitCode;

fn main() -> ExitCode {
    tessera::cli::main()
}

/// Each exchange allocates a few hundred small objects across two worker threads and the audit
/// writer; mimalloc's per-thread free lists serve them for less than glibc's arenas (about 5%
/// more exchanges a second under load). Without transparent huge pages its heap stays small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
