//! A QR code from a picture (a screenshot, or a photo of the other computer's screen).

use std::path::Path;

use crate::exit::Failure;

/// The text of the first readable QR code in the image at `path`.
pub fn decode_file(path: &Path) -> Result<String, Failure> {
    let unreadable = |reason: String| {
        Failure::failed(format!(
            "cannot read the picture {}: {reason}",
            path.display()
        ))
    };
    let image = image::ImageReader::open(path)
        .map_err(|err| unreadable(err.to_string()))?
        .with_guessed_format()
        .map_err(|err| unreadable(err.to_string()))?
        .decode()
        .map_err(|err| unreadable(err.to_string()))?;
    decode(image.to_luma8())
        .map_err(|reason| Failure::failed(format!("{}: {reason}", path.display())))
}

/// The text of the first readable QR code in a grayscale image.
pub fn decode(image: image::GrayImage) -> Result<String, &'static str> {
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    if grids.is_empty() {
        return Err("no QR code was found in the picture");
    }
    grids
        .iter()
        .find_map(|grid| grid.decode().ok().map(|(_meta, text)| text))
        .ok_or("the QR code in the picture could not be read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_without_a_qr_code_says_so() {
        let blank = image::GrayImage::from_pixel(120, 80, image::Luma([255]));
        assert_eq!(decode(blank), Err("no QR code was found in the picture"));
    }

    #[test]
    fn a_file_that_is_no_picture_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("fido2ctl-qr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-picture.png");
        std::fs::write(&path, b"FIDO:/123 is text, not an image").unwrap();
        let failure = decode_file(&path).unwrap_err();
        assert!(
            failure.message.contains("cannot read the picture"),
            "{}",
            failure.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
