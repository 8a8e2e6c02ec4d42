fn main() -> std::process::ExitCode {
    estca::cli::main()
}
