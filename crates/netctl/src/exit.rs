//! How the CLI ends when it fails.

/// Ends the CLI with `code`, after what was to be said on stderr was said (or with
/// `message`, said by `main`).
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or("failed"))
    }
}

impl std::error::Error for Exit {}

impl Exit {
    /// Status 1, its errors already printed one by one (`inspect A B`, `rm A B`).
    pub fn reported() -> anyhow::Error {
        Self {
            code: 1,
            message: None,
        }
        .into()
    }
}
