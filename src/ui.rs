//! The embedded admin UI: `static/` compiled into the binary and served at `/`.

use poem::endpoint::EmbeddedFilesEndpoint;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
pub struct Static;

pub fn endpoint() -> EmbeddedFilesEndpoint<Static> {
    EmbeddedFilesEndpoint::<Static>::new()
}
