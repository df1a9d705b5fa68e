package dev.ferry.cluster.api;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonParseException;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.util.Map;

/**
 * Finds the field a JSON body got wrong. Protobuf's JSON parser names the value, not the field
 * ({@code Out of range uint64 value: "-1"}), so the body is parsed again one field at a time, down
 * the nesting, until the smallest failing field is found ({@code spec.memory_bytes}).
 */
final class JsonFields {
  private static final JsonFormat.Parser PARSER = JsonFormat.parser();

  private JsonFields() {}

  /** The dotted path of the field that makes {@code json} fail to parse as {@code type}, or null. */
  static String locateError(String json, Message type) {
    try {
      return locate(JsonParser.parseString(json), type, "");
    } catch (JsonParseException | IllegalStateException e) {
      return null; // not JSON at all: the parser's message says where
    }
  }

  private static String locate(JsonElement value, Message type, String prefix) {
    if (!value.isJsonObject()) {
      return null;
    }
    for (Map.Entry<String, JsonElement> member : value.getAsJsonObject().entrySet()) {
      JsonObject alone = new JsonObject();
      alone.add(member.getKey(), member.getValue());
      try {
        PARSER.merge(alone.toString(), type.newBuilderForType());
      } catch (InvalidProtocolBufferException e) {
        String path = prefix + member.getKey();
        FieldDescriptor field = field(type.getDescriptorForType(), member.getKey());
        if (field == null || field.isRepeated() || field.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
          return path;
        }
        Message nested = type.newBuilderForType().newBuilderForField(field).getDefaultInstanceForType();
        String inner = locate(member.getValue(), nested, path + ".");
        return inner == null ? path : inner;
      }
    }
    return null;
  }

  /** The field by its proto name or its JSON name (the parser accepts both). */
  private static FieldDescriptor field(Descriptor type, String name) {
    FieldDescriptor byName = type.findFieldByName(name);
    if (byName != null) {
      return byName;
    }
    return type.getFields().stream().filter(f -> f.getJsonName().equals(name)).findFirst().orElse(null);
  }
}
