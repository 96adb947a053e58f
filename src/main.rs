fn main() {
    std::process::exit(pd_doctor::cli::main());
}
