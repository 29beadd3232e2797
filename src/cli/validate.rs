//! `chaos-conductor validate -f PATH...`: offline checks of LitmusChaos YAML.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::validate::{MAX_INPUT_BYTES, Problem, Severity, Source, Validator};

/// Deepest folder recursion followed.
const MAX_FOLDER_DEPTH: usize = 32;

/// Arguments of `validate`.
#[derive(Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Files or folders to check (folders: every *.yaml / *.yml below, sorted); `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// How problems are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One line per problem: `PATH:DOC kind/namespace/name: field: message`.
    Text,
    /// A JSON array of problems.
    Json,
}

/// One input to read: where it comes from and the name used in messages.
enum Input {
    Stdin,
    File(PathBuf),
}

/// Runs `validate`: exit 0 when there is no error, 1 otherwise.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let validator = match Validator::new() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = Vec::new();
    let mut inputs = Vec::new();
    for arg in &args.files {
        if arg == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = Path::new(arg);
        if path.is_dir() {
            let before = inputs.len();
            collect_folder(path, 0, &mut inputs, &mut problems);
            if inputs.len() == before {
                problems
                    .push(Problem::warning("", "folder holds no *.yaml or *.yml file").at(arg, 0));
            }
        } else {
            inputs.push(Input::File(path.to_path_buf()));
        }
    }

    let mut loaded: Vec<(String, Vec<u8>)> = Vec::new();
    for input in inputs {
        let (name, bytes) = match &input {
            Input::Stdin => ("-".to_string(), read_limited(std::io::stdin().lock())),
            Input::File(path) => (
                path.display().to_string(),
                std::fs::File::open(path).and_then(read_limited),
            ),
        };
        match bytes {
            Ok(bytes) => loaded.push((name, bytes)),
            Err(e) => problems.push(Problem::error("", format!("cannot read: {e}")).at(&name, 0)),
        }
    }
    let sources: Vec<Source<'_>> = loaded
        .iter()
        .map(|(name, bytes)| Source { name, bytes })
        .collect();
    problems.extend(validator.validate(&sources));
    report(&problems, args.output, loaded.len())
}

/// Reads at most one byte past the limit, so an oversized input is reported, never loaded whole.
fn read_limited(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn collect_folder(dir: &Path, depth: usize, inputs: &mut Vec<Input>, problems: &mut Vec<Problem>) {
    let name = dir.display().to_string();
    if depth > MAX_FOLDER_DEPTH {
        problems.push(Problem::warning("", "folder nesting too deep, not read").at(&name, 0));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::error("", format!("cannot read folder: {e}")).at(&name, 0));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        // Symlinked folders are not followed (no loops); symlinked files are read.
        let is_real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_real_dir {
            collect_folder(&path, depth + 1, inputs, problems);
        } else if path.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml")
        {
            inputs.push(Input::File(path));
        }
    }
}

fn report(problems: &[Problem], format: OutputFormat, files: usize) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth a panic: write errors are ignored.
    match format {
        OutputFormat::Text => {
            for p in problems {
                let _ = writeln!(stdout, "{p}");
            }
        }
        OutputFormat::Json => match serde_json::to_string_pretty(problems) {
            Ok(json) => {
                let _ = writeln!(stdout, "{json}");
            }
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    let _ = stdout.flush();
    let count = |s: Severity| problems.iter().filter(|p| p.severity == s).count();
    let errors = count(Severity::Error);
    eprintln!(
        "validate: {files} input(s): {errors} error(s), {} warning(s), {} note(s)",
        count(Severity::Warning),
        count(Severity::Note)
    );
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
