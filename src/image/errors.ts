/**
 * The errors of image decoding: bytes that are not a decodable image, and images over a size limit. The
 * server maps them to INVALID_ARGUMENT and RESOURCE_EXHAUSTED.
 *
 * @module
 */

/** Raised for bytes that are not a decodable PNG/JPEG image. */
export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageDecodeError";
  }
}

/** Raised when an image's declared size exceeds the pixel limit. */
export class ImageTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageTooLargeError";
  }
}
