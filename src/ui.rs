//! The embedded admin UI: `static/` compiled into the binary and served at `/`. poem's
//! embedded-files endpoint answers an ETag (the file's hash) and 304 on a match; `no-cache`
//! makes browsers revalidate, so a new binary's UI is picked up at once and an unchanged one
//! costs a 304.

use poem::endpoint::EmbeddedFilesEndpoint;
use poem::http::header::CACHE_CONTROL;
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
pub struct Static;

pub fn endpoint() -> impl Endpoint {
    EmbeddedFilesEndpoint::<Static>::new()
        .with(SetHeader::new().overriding(CACHE_CONTROL, "no-cache"))
}
