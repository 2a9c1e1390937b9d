//! Staff roles as the database stores them (`staff_accounts.role`): stable codes, never
//! renamed, read back into [`Role`].

use crate::gate::Role;

/// The stable database form of a role.
pub const fn role_code(role: Role) -> &'static str {
    match role {
        Role::Administrator => "administrator",
        Role::General => "general",
        Role::MedicalViewer => "medical_viewer",
    }
}

/// The role stored as `code`; `None` for a code this version does not know.
pub fn role_from_code(code: &str) -> Option<Role> {
    [Role::Administrator, Role::General, Role::MedicalViewer]
        .into_iter()
        .find(|r| role_code(*r) == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in [Role::Administrator, Role::General, Role::MedicalViewer] {
            assert_eq!(role_from_code(role_code(role)), Some(role));
        }
        assert_eq!(role_from_code("root"), None);
    }
}
