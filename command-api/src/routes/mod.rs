pub mod accounts;
pub mod characters;
