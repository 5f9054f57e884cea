#include "wedge/stack/go_version.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "wedge/base/unique_fd.h"

namespace wedge::stack {
namespace {

constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
constexpr std::size_t kHeaderSize = 32;
constexpr unsigned char kFlagBigEndian = 0x1;
constexpr unsigned char kFlagVersionInline = 0x2;
constexpr std::uint64_t kMaxVersionLength = 64;

class ElfFile {
 public:
  ElfFile(std::filesystem::path path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  Status ReadAt(std::uint64_t offset, void* into, std::size_t size) const {
    const ssize_t n = ::pread(fd_.get(), into, size, static_cast<off_t>(offset));
    if (n < 0) return ErrnoError("pread('" + path_.string() + "')");
    if (static_cast<std::size_t>(n) != size) return Fail("truncated");
    return OkStatus();
  }

  Error Fail(const std::string& why) const { return Error(path_.string() + ": " + why); }

  Status ReadHeaders() {
    const ssize_t n = ::pread(fd_.get(), &header_, sizeof header_, 0);
    if (n < 0) return ErrnoError("pread('" + path_.string() + "')");
    if (n < SELFMAG || std::memcmp(header_.e_ident, ELFMAG, SELFMAG) != 0) {
      return Fail("not an ELF file");
    }
    if (static_cast<std::size_t>(n) != sizeof header_) return Fail("truncated ELF header");
    if (header_.e_ident[EI_CLASS] != ELFCLASS64 || header_.e_ident[EI_DATA] != ELFDATA2LSB) {
      return Fail("not a 64-bit little-endian ELF file");
    }
    if (header_.e_shentsize != sizeof(Elf64_Shdr) || header_.e_phentsize != sizeof(Elf64_Phdr)) {
      return Fail("unexpected ELF header sizes");
    }
    sections_.resize(header_.e_shnum);
    if (!sections_.empty()) {
      WEDGE_RETURN_IF_ERROR(
          ReadAt(header_.e_shoff, sections_.data(), sections_.size() * sizeof(Elf64_Shdr)));
    }
    segments_.resize(header_.e_phnum);
    if (!segments_.empty()) {
      WEDGE_RETURN_IF_ERROR(
          ReadAt(header_.e_phoff, segments_.data(), segments_.size() * sizeof(Elf64_Phdr)));
    }
    return OkStatus();
  }

  // The section named `name`, by the section-name string table.
  Result<Elf64_Shdr> Section(std::string_view name) const {
    if (header_.e_shstrndx >= sections_.size()) return Fail("no section name table");
    const Elf64_Shdr& names = sections_[header_.e_shstrndx];
    std::vector<char> table(names.sh_size + 1, '\0');
    WEDGE_RETURN_IF_ERROR(ReadAt(names.sh_offset, table.data(), names.sh_size));
    for (const Elf64_Shdr& section : sections_) {
      if (section.sh_name < names.sh_size && name == table.data() + section.sh_name) {
        return section;
      }
    }
    return Fail("no " + std::string(name) + " section (not built by Go 1.13 or later)");
  }

  // The file offset of virtual address `address`, by the loaded segments.
  std::optional<std::uint64_t> OffsetOf(std::uint64_t address, std::uint64_t size) const {
    for (const Elf64_Phdr& segment : segments_) {
      if (segment.p_type == PT_LOAD && address >= segment.p_vaddr &&
          address + size <= segment.p_vaddr + segment.p_filesz) {
        return segment.p_offset + (address - segment.p_vaddr);
      }
    }
    return std::nullopt;
  }

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
  Elf64_Ehdr header_{};
  std::vector<Elf64_Shdr> sections_;
  std::vector<Elf64_Phdr> segments_;
};

std::uint64_t Little64(const unsigned char* bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// An unsigned LEB128 varint at `bytes`; its value and length, or nullopt.
std::optional<std::pair<std::uint64_t, std::size_t>> Varint(const unsigned char* bytes,
                                                            std::size_t size) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size && i < 10; ++i) {
    value |= static_cast<std::uint64_t>(bytes[i] & 0x7f) << (7 * i);
    if ((bytes[i] & 0x80) == 0) return std::make_pair(value, i + 1);
  }
  return std::nullopt;
}

bool LooksLikeGoVersion(const std::string& text) {
  return text.rfind("go1.", 0) == 0 || text.rfind("devel ", 0) == 0;
}

}  // namespace

Result<std::string> GoVersionOf(const std::filesystem::path& binary) {
  UniqueFd fd(::open(binary.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open('" + binary.string() + "')");
  ElfFile elf(binary, std::move(fd));
  WEDGE_RETURN_IF_ERROR(elf.ReadHeaders());
  WEDGE_ASSIGN_OR_RETURN(Elf64_Shdr section, elf.Section(".go.buildinfo"));
  unsigned char header[kHeaderSize + 1 + kMaxVersionLength] = {};
  const std::size_t available =
      std::min<std::uint64_t>(section.sh_size, static_cast<std::uint64_t>(sizeof header));
  if (available < kHeaderSize) return elf.Fail(".go.buildinfo is too short");
  WEDGE_RETURN_IF_ERROR(elf.ReadAt(section.sh_offset, header, available));
  if (std::string_view(reinterpret_cast<const char*>(header), kBuildInfoMagic.size()) !=
      kBuildInfoMagic) {
    return elf.Fail(".go.buildinfo does not start with Go's build information magic");
  }
  const unsigned pointer_size = header[14];
  const unsigned char flags = header[15];
  std::string version;
  if ((flags & kFlagVersionInline) != 0) {
    auto length = Varint(header + kHeaderSize, available - kHeaderSize);
    if (!length || length->first > kMaxVersionLength ||
        kHeaderSize + length->second + length->first > available) {
      return elf.Fail("malformed inline Go version");
    }
    version.assign(reinterpret_cast<const char*>(header) + kHeaderSize + length->second,
                   length->first);
  } else {
    // Before Go 1.18: a pointer to runtime.buildVersion, a string header {data, length}.
    if (pointer_size != 8 || (flags & kFlagBigEndian) != 0) {
      return elf.Fail("unsupported Go build information layout");
    }
    const std::uint64_t string_header = Little64(header + 16);
    auto at = elf.OffsetOf(string_header, 16);
    if (!at) return elf.Fail("Go version string header outside the loaded segments");
    unsigned char fields[16];
    WEDGE_RETURN_IF_ERROR(elf.ReadAt(*at, fields, sizeof fields));
    const std::uint64_t data = Little64(fields);
    const std::uint64_t length = Little64(fields + 8);
    if (length == 0 || length > kMaxVersionLength) return elf.Fail("malformed Go version string");
    auto data_at = elf.OffsetOf(data, length);
    if (!data_at) return elf.Fail("Go version string outside the loaded segments");
    version.resize(length);
    WEDGE_RETURN_IF_ERROR(elf.ReadAt(*data_at, version.data(), length));
  }
  if (!LooksLikeGoVersion(version)) {
    return elf.Fail("Go build information holds no Go version (\"" + version + "\")");
  }
  return version;
}

}  // namespace wedge::stack
