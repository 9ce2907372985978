// UTF-8 helpers and GPT-2's byte <-> unicode mapping.
//
// Byte-level BPE vocabularies do not store raw bytes: every byte 0..255 is
// shown as one printable code point (GPT-2's bytes_to_unicode): printable
// Latin-1 bytes map to themselves, the other 68 bytes (controls, space, 0x7F,
// 0x80-0xA0, 0xAD) map to U+0100.. in byte order. So " " is "Ġ" (U+0120) and
// "\n" is "Ċ" (U+010A) in vocab and merges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::tokenizer_internal {

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for
// bytes that cannot start a sequence, so callers always make progress).
int Utf8SequenceLength(uint8_t lead);

// Decodes the code point at text[*pos] and advances *pos. Returns -1 (and
// advances by one byte) for an invalid or truncated sequence.
int32_t DecodeUtf8(std::string_view text, size_t* pos);

void AppendUtf8(uint32_t code_point, std::string* out);

// Length of the longest prefix of `bytes` that does not end inside an
// incomplete-but-so-far-valid UTF-8 sequence. Invalid bytes count as complete
// (they will never become valid), so only a true partial tail is held back.
size_t CompleteUtf8PrefixLength(std::string_view bytes);

// Replaces every invalid UTF-8 byte with U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

// GPT-2 byte -> code point and its UTF-8 spelling.
uint32_t ByteToCodePoint(uint8_t byte);
const std::string& ByteToUnicode(uint8_t byte);
// Inverse: -1 when the code point is not one of the 256 byte symbols.
int CodePointToByte(int32_t code_point);

// Raw bytes -> GPT-2 symbols (what vocab strings look like).
std::string BytesToUnicode(std::string_view bytes);
// GPT-2 symbols -> raw bytes. Code points outside the table are kept as UTF-8
// (added tokens are stored verbatim, not byte-mapped).
std::string UnicodeToBytes(std::string_view text);

// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
inline constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

}  // namespace strata::tokenizer_internal
