use std::process::ExitCode;

fn main() -> ExitCode {
    tessera::cli::main()
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
