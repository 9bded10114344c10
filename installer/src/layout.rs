//! Layout: where everything goes, derived from one home directory.
//!
//! Nothing else in the crate builds a path from `$HOME`. `--home DIR` acts as
//! if `$HOME` were DIR (and ignores the XDG variables, so tests and trials stay
//! inside DIR); without it `$HOME`, `$XDG_CONFIG_HOME` and `$XDG_STATE_HOME`
//! are honoured.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The home directory (`%h` in the units).
    pub home: PathBuf,
    /// The config root: `~/.config`. Every installed file lives under it.
    pub config: PathBuf,
    /// The installer's state: `~/.local/state/mosaic-install`.
    pub state: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("$HOME is not set; pass --home DIR to say where to install")]
    NoHome,
    #[error("home directory {} is not an absolute path; pass an absolute --home", .0.display())]
    Relative(PathBuf),
    #[error("config directory {dir} contains {bad:?}, which systemd unit files cannot name safely (units refer to it in ExecStart= and EnvironmentFile=); use a config directory of letters, digits and / . _ - @ + (unset XDG_CONFIG_HOME to use ~/.config)", dir = .0.display(), bad = .1)]
    UnitUnsafe(PathBuf, char),
}

impl Layout {
    /// Everything under `home`, XDG variables ignored.
    pub fn for_home(home: &Path) -> Result<Layout, LayoutError> {
        let home = absolute(home)?;
        Ok(Layout {
            config: home.join(".config"),
            state: home.join(".local/state/mosaic-install"),
            home,
        })
    }

    /// From the process environment: `$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`.
    pub fn from_env() -> Result<Layout, LayoutError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or(LayoutError::NoHome)?;
        let mut layout = Layout::for_home(Path::new(&home))?;
        // The XDG spec says relative values are invalid and must be ignored.
        let xdg = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        if let Some(config) = xdg("XDG_CONFIG_HOME") {
            layout.config = config;
        }
        if let Some(state) = xdg("XDG_STATE_HOME") {
            layout.state = state.join("mosaic-install");
        }
        Ok(layout)
    }

    /// Absolute path of a config-relative path.
    pub fn target(&self, rel: &Path) -> PathBuf {
        self.config.join(rel)
    }

    /// How the units refer to the Mosaic tree: `%h/.config/mosaic` when the
    /// config root is the default one, its absolute path otherwise (refused
    /// when it holds characters a unit file would misread: spaces, `%`, ...).
    pub fn unit_mosaic_dir(&self) -> Result<String, LayoutError> {
        if self.config == self.home.join(".config") {
            return Ok("%h/.config/mosaic".to_owned());
        }
        let spelled = self.config.display().to_string();
        let unsafe_char = spelled
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/._-@+".contains(*c)));
        match unsafe_char {
            Some(c) => Err(LayoutError::UnitUnsafe(self.config.clone(), c)),
            None => Ok(format!("{spelled}/mosaic")),
        }
    }

    /// The receipt of the current generation.
    pub fn receipt(&self) -> PathBuf {
        self.state.join("receipt.json")
    }

    pub fn lock(&self) -> PathBuf {
        self.state.join("lock")
    }

    /// Per-generation receipts, for rollback.
    pub fn generations(&self) -> PathBuf {
        self.state.join("generations")
    }

    /// Per-generation backups of replaced and removed files.
    pub fn backups(&self) -> PathBuf {
        self.state.join("backups")
    }
}

fn absolute(path: &Path) -> Result<PathBuf, LayoutError> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|_| LayoutError::Relative(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_layout_keeps_everything_inside() {
        let layout = Layout::for_home(Path::new("/h")).unwrap();
        assert_eq!(layout.config, Path::new("/h/.config"));
        assert_eq!(layout.state, Path::new("/h/.local/state/mosaic-install"));
        assert_eq!(layout.unit_mosaic_dir().unwrap(), "%h/.config/mosaic");
        assert_eq!(
            layout.target(Path::new("mosaic/fleet/roster.yaml")),
            Path::new("/h/.config/mosaic/fleet/roster.yaml")
        );
    }

    #[test]
    fn moved_config_root_is_spelled_out_for_units() {
        let mut layout = Layout::for_home(Path::new("/h")).unwrap();
        layout.config = PathBuf::from("/cfg");
        assert_eq!(layout.unit_mosaic_dir().unwrap(), "/cfg/mosaic");
        layout.config = PathBuf::from("/my config 100%");
        assert!(layout.unit_mosaic_dir().is_err());
    }
}
