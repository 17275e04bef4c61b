use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{accounts, characters};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Chaos World command API", version = "1",
        description = "Commands change the game. Errors are application/problem+json (RFC 9457) \
            with a stable `type` per rule. Reads live on the query API."),
    paths(accounts::register, accounts::login, characters::create, characters::cast_skill,
        characters::travel, characters::grant_experience, characters::history),
    components(schemas(accounts::Credentials, accounts::AccountCreated, accounts::Session,
        characters::CreateCharacter, characters::CastSkill, characters::Travel,
        characters::GrantExperience, characters::HistoryEntry, crate::service::CommandOutcome)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
