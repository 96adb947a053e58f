#![forbid(unsafe_code)]

fn main() {
    std::process::exit(pd_doctor::cli::main());
}
