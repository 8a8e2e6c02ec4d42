/// mimalloc instead of the system allocator: sled allocates a 512 KiB write buffer for every
/// flush, and with group commit under load that is hundreds per second; glibc's malloc raises
/// its mmap threshold after the first such buffer is freed and then keeps them in its heaps,
/// so the daemon's resident memory grew past 500 MiB within seconds of renewals (measured
/// with `estca-bench`, see the README's "Performance"). mimalloc returns them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    estca::main()
}
