//! Layout: where everything goes, derived from one home directory.
//!
//! Nothing else in the crate builds a path from `$HOME`. `--home DIR` acts as
//! if `$HOME` were DIR (and ignores the XDG variables and `$MOSAIC_HOME`, so
//! tests and trials stay inside DIR); without it `$HOME`, `$XDG_CONFIG_HOME`,
//! `$XDG_STATE_HOME` and Mosaic's own `$MOSAIC_HOME` (where the Mosaic tree
//! lives, default `<config>/mosaic`) are honoured.
//!
//! Installed files are named by config-relative paths everywhere (plan,
//! receipt); those under `mosaic/` live in the Mosaic tree wherever
//! `$MOSAIC_HOME` puts it, and [`Layout::target`] and [`Layout::confiner`]
//! are the only places that know.

use std::path::{Path, PathBuf};

use crate::shared::confine::{ConfineError, Confiner};

/// The first component of every config-relative path in the Mosaic tree.
pub(crate) const MOSAIC_REL: &str = "mosaic";
/// Mosaic's variable for where its tree lives.
pub(crate) const MOSAIC_HOME_VAR: &str = "MOSAIC_HOME";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The home directory (`%h` in the units).
    pub(crate) home: PathBuf,
    /// The config root: `~/.config`. Every installed file lives under it.
    pub(crate) config: PathBuf,
    /// The installer's state: `~/.local/state/mosaic-install`.
    pub(crate) state: PathBuf,
    /// The Mosaic tree: `$MOSAIC_HOME`, else `<config>/mosaic`.
    pub(crate) mosaic: PathBuf,
}

/// A home that cannot be used as given: the operator's to fix.
impl crate::shared::command::ExitStatus for LayoutError {
    fn exit_code(&self) -> u8 {
        2
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LayoutError {
    #[error("$HOME is not set; pass --home DIR to say where to install")]
    NoHome,
    #[error("home directory {} is not an absolute path; pass an absolute --home", .0.display())]
    Relative(PathBuf),
    #[error("the Mosaic tree {dir} contains {bad:?}, which systemd unit files cannot name safely (units refer to it in ExecStart= and EnvironmentFile=); use a directory of letters, digits and / . _ - @ + (unset MOSAIC_HOME and XDG_CONFIG_HOME to use ~/.config/mosaic)", dir = .0.display(), bad = .1)]
    UnitUnsafe(PathBuf, char),
    #[error("MOSAIC_HOME={} is not an absolute path; set it to the absolute path of the Mosaic tree, or unset it to use ~/.config/mosaic", .0.display())]
    RelativeMosaicHome(PathBuf),
}

impl Layout {
    /// Everything under `home`, XDG variables ignored.
    pub(crate) fn for_home(home: &Path) -> Result<Layout, LayoutError> {
        let home = absolute(home)?;
        Ok(Layout {
            config: home.join(".config"),
            state: home.join(".local/state/mosaic-install"),
            mosaic: home.join(".config").join(MOSAIC_REL),
            home,
        })
    }

    /// From the process environment: `$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`.
    pub(crate) fn from_env() -> Result<Layout, LayoutError> {
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
            layout.mosaic = config.join(MOSAIC_REL);
            layout.config = config;
        }
        if let Some(state) = xdg("XDG_STATE_HOME") {
            layout.state = state.join("mosaic-install");
        }
        if let Some(mosaic) = std::env::var_os(MOSAIC_HOME_VAR).filter(|m| !m.is_empty()) {
            let mosaic = PathBuf::from(mosaic);
            if !mosaic.is_absolute() {
                return Err(LayoutError::RelativeMosaicHome(mosaic));
            }
            layout.mosaic = mosaic;
        }
        Ok(layout)
    }

    /// Absolute path of a config-relative path.
    pub(crate) fn target(&self, rel: &Path) -> PathBuf {
        match rel.strip_prefix(MOSAIC_REL) {
            Ok(inside) if inside.as_os_str().is_empty() => self.mosaic.clone(),
            Ok(inside) => self.mosaic.join(inside),
            Err(_) => self.config.join(rel),
        }
    }

    /// Resolves config-relative paths (those under `mosaic/` in the Mosaic
    /// tree) without following a symlink out of the tree they belong to.
    pub(crate) fn confiner(&self) -> Result<Confiner, ConfineError> {
        let confiner = Confiner::new(&self.config)?;
        if self.mosaic == self.config.join(MOSAIC_REL) {
            return Ok(confiner);
        }
        confiner.with_subtree(Path::new(MOSAIC_REL), &self.mosaic)
    }

    /// The directories a transaction of this layout may write under.
    pub(crate) fn write_roots(&self) -> Vec<PathBuf> {
        vec![self.config.clone(), self.mosaic.clone(), self.state.clone()]
    }

    /// How the units refer to the Mosaic tree: `%h/.config/mosaic` when it
    /// is the default one, its absolute path otherwise (refused when it
    /// holds characters a unit file would misread: spaces, `%`, ...).
    pub(crate) fn unit_mosaic_dir(&self) -> Result<String, LayoutError> {
        if self.mosaic == self.home.join(".config").join(MOSAIC_REL) {
            return Ok("%h/.config/mosaic".to_owned());
        }
        let spelled = self.mosaic.display().to_string();
        let unsafe_char = spelled
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/._-@+".contains(*c)));
        match unsafe_char {
            Some(c) => Err(LayoutError::UnitUnsafe(self.mosaic.clone(), c)),
            None => Ok(spelled),
        }
    }

    /// The receipt of the current generation.
    pub(crate) fn receipt(&self) -> PathBuf {
        self.state.join("receipt.json")
    }

    /// Per-generation receipts, for rollback.
    pub(crate) fn generations(&self) -> PathBuf {
        self.state.join("generations")
    }

    /// Per-generation backups of replaced and removed files.
    pub(crate) fn backups(&self) -> PathBuf {
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
    fn moved_mosaic_tree_is_spelled_out_for_units() {
        let mut layout = Layout::for_home(Path::new("/h")).unwrap();
        layout.mosaic = PathBuf::from("/cfg/mosaic");
        assert_eq!(layout.unit_mosaic_dir().unwrap(), "/cfg/mosaic");
        layout.mosaic = PathBuf::from("/my config 100%");
        assert!(layout.unit_mosaic_dir().is_err());
    }

    #[test]
    fn mosaic_paths_live_in_the_mosaic_tree() {
        let mut layout = Layout::for_home(Path::new("/h")).unwrap();
        layout.mosaic = PathBuf::from("/srv/mosaic");
        assert_eq!(
            layout.target(Path::new("mosaic/fleet/roster.yaml")),
            Path::new("/srv/mosaic/fleet/roster.yaml")
        );
        assert_eq!(layout.target(Path::new("mosaic")), Path::new("/srv/mosaic"));
        assert_eq!(
            layout.target(Path::new("mosaicx/a")),
            Path::new("/h/.config/mosaicx/a")
        );
        assert_eq!(
            layout.target(Path::new("systemd/user/a.service")),
            Path::new("/h/.config/systemd/user/a.service")
        );
    }
}
