#include <cstdint>
#include <string>
#include <string_view>

#include "report_internal.h"
#include "wedge/report/report.h"
#include "wedge/sys/files.h"

namespace wedge::report {

namespace {

// Code points XML 1.0 allows in a document (section 2.2); everything else is dropped.
bool IsXmlChar(char32_t c) {
  return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
         (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

// Decodes one UTF-8 sequence at `text[i]`; returns its length, or 0 when it is not valid UTF-8.
std::size_t DecodeUtf8(std::string_view text, std::size_t i, char32_t& out) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  std::size_t length = 0;
  char32_t minimum = 0;
  if (lead < 0x80) {
    out = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, minimum = 0x80, out = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, minimum = 0x800, out = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, minimum = 0x10000, out = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    out = (out << 6) | (byte(i + k) & 0x3F);
  }
  if (out < minimum || out > 0x10FFFF || (out >= 0xD800 && out <= 0xDFFF)) return 0;
  return length;
}

// Escapes `text` for element content or (with `attribute`) a double- or single-quoted
// attribute value. Control characters are dropped, invalid UTF-8 becomes U+FFFD.
std::string XmlEscape(std::string_view text, bool attribute = false) {
  std::string escaped;
  escaped.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    char32_t c = 0;
    std::size_t length = DecodeUtf8(text, i, c);
    if (length == 0) {
      escaped += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    std::string_view sequence = text.substr(i, length);
    i += length;
    if (!IsXmlChar(c)) continue;
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&apos;";
        break;
      // Attribute-value normalisation would turn these into spaces.
      case '\n':
        escaped += attribute ? "&#10;" : "\n";
        break;
      case '\r':
        escaped += "&#13;";
        break;
      case '\t':
        escaped += attribute ? "&#9;" : "\t";
        break;
      default:
        escaped += sequence;
    }
  }
  return escaped;
}

std::string Attribute(std::string_view name, std::string_view value) {
  return " " + std::string(name) + "=\"" + XmlEscape(value, true) + "\"";
}

std::string FailureMessage(const RunResult& result) {
  std::string message;
  if (result.verdict != result.expected) {
    message = "expected " + std::string(scenario::VerdictName(result.expected)) + ", got " +
              std::string(scenario::VerdictName(result.verdict));
  }
  if (!result.host_clean) {
    if (!message.empty()) message += "; ";
    message += "host not clean after teardown";
  }
  return message;
}

void AppendProperty(std::string& xml, std::string_view name, std::string_view value) {
  xml += "      <property" + Attribute("name", name) + Attribute("value", value) + "/>\n";
}

}  // namespace

std::string ToJunitXml(const Report& report) {
  int failures = 0;
  int errors = 0;
  std::int64_t total_ms = 0;
  for (const RunResult& result : report.results) {
    if (result.error) {
      ++errors;
    } else if (!result.AsExpected()) {
      ++failures;
    }
    total_ms += result.duration_ms;
  }
  std::string counts = Attribute("tests", std::to_string(report.results.size())) +
                       Attribute("failures", std::to_string(failures)) +
                       Attribute("errors", std::to_string(errors)) +
                       Attribute("time", internal::FormatSeconds(total_ms));

  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml += "<testsuites" + counts + ">\n";
  xml += "  <testsuite" + Attribute("name", "wedge") + counts + Attribute("skipped", "0") + ">\n";
  xml += "    <properties>\n";
  const HostInfo& host = report.host;
  AppendProperty(xml, "kernel.release", host.kernel_release);
  AppendProperty(xml, "kernel.version", host.kernel_version);
  AppendProperty(xml, "kernel.machine", host.machine);
  AppendProperty(xml, "cgroup_mode", host.cgroup_mode);
  AppendProperty(xml, "wedge_version", host.wedge_version);
  xml += "    </properties>\n";

  for (const RunResult& result : report.results) {
    xml += "    <testcase" + Attribute("classname", "wedge.scenarios") +
           Attribute("name", result.scenario) +
           Attribute("time", internal::FormatSeconds(result.duration_ms)) + ">\n";
    std::string details = internal::Join(internal::DiffLines(result), "\n");
    if (result.error) {
      xml += "      <error" + Attribute("message", *result.error) + Attribute("type", "internal") +
             ">" + XmlEscape(details) + "</error>\n";
    } else if (!result.AsExpected()) {
      xml += "      <failure" + Attribute("message", FailureMessage(result)) +
             Attribute("type", result.verdict != result.expected ? "verdict" : "host-not-clean") +
             ">" + XmlEscape(details) + "</failure>\n";
    }
    std::string out = result.reason + "\nsignature hash: " +
                      (result.signature_hash.empty() ? "(none)" : result.signature_hash) + "\n";
    if (result.held) out += internal::HeldLine(*result.held) + "\n";
    xml += "      <system-out>" + XmlEscape(out) + "</system-out>\n";
    xml += "    </testcase>\n";
  }
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

Status WriteJunit(const Report& report, const std::filesystem::path& file) {
  Status status = sys::WriteFileAtomically(file, ToJunitXml(report), internal::kReportFileMode);
  if (!status.ok()) return status.error().WithContext("writing the JUnit report");
  return OkStatus();
}

}  // namespace wedge::report
