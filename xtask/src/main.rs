//! The project's task runner (placeholder).

fn main() -> anyhow::Result<()> {
    Ok(())
}
