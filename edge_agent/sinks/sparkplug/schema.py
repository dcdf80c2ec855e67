"""The Sparkplug B payload schema (Eclipse Sparkplug 3.0, section 6.4), built at import time.

The message classes come from a `FileDescriptorProto` written here field by field from the
specification's protobuf definition, so there is no protoc step and no generated module tied to
one protobuf runtime release (protobuf 5 and later refuse generated code newer than the runtime).
The descriptor lives in a private pool: another library in the process that registers the same
file under the same name cannot collide with it.

Field numbers, labels and types are the specification's; the names match it too, so that a
payload printed with protobuf's text format reads like the specification's examples.
"""

from __future__ import annotations

__all__ = ["DataType", "Payload"]

from enum import IntEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_MAX = 536_870_912  # one past the largest field number: "extensions N to max"

_PACKAGE = "org.eclipse.tahu.protobuf"


class DataType(IntEnum):
    """Sparkplug data types (specification 6.4.16); the value is what goes into `datatype`."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21
    Int8Array = 22
    Int16Array = 23
    Int32Array = 24
    Int64Array = 25
    UInt8Array = 26
    UInt16Array = 27
    UInt32Array = 28
    UInt64Array = 29
    FloatArray = 30
    DoubleArray = 31
    BooleanArray = 32
    StringArray = 33
    DateTimeArray = 34


# (name, number, label, type, message type or None, oneof index or None)
_Field = tuple[str, int, int, int, str | None, int | None]


def _field(
    name: str,
    number: int,
    kind: int,
    *,
    label: int = _OPTIONAL,
    message: str | None = None,
    oneof: int | None = None,
) -> _Field:
    return (name, number, label, kind, message, oneof)


def _message(
    name: str,
    fields: list[_Field],
    *,
    nested: tuple[descriptor_pb2.DescriptorProto, ...] = (),
    oneofs: tuple[str, ...] = (),
    extensions_from: int | None = None,
) -> descriptor_pb2.DescriptorProto:
    proto = descriptor_pb2.DescriptorProto(name=name)
    for oneof in oneofs:
        proto.oneof_decl.add(name=oneof)
    for f_name, number, label, kind, type_name, oneof_index in fields:
        field = proto.field.add(name=f_name, number=number, label=label, type=kind)
        if type_name is not None:
            field.type_name = f".{_PACKAGE}.{type_name}"
        if oneof_index is not None:
            field.oneof_index = oneof_index
    proto.nested_type.extend(nested)
    if extensions_from is not None:
        proto.extension_range.add(start=extensions_from, end=_MAX)
    return proto


def _extension(name: str) -> descriptor_pb2.DescriptorProto:
    """The specification's empty `XxxExtension { extensions 1 to max; }` messages."""
    return _message(name, [], extensions_from=1)


_U32, _U64, _FLOAT, _DOUBLE = _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_FLOAT, _F.TYPE_DOUBLE
_BOOL, _STRING, _BYTES, _MSG = _F.TYPE_BOOL, _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_MESSAGE


def _scalar_values(first: int, extension: str) -> list[_Field]:
    """The `oneof value` shared by Parameter, DataSetValue and (in part) PropertyValue."""
    return [
        _field("int_value", first, _U32, oneof=0),
        _field("long_value", first + 1, _U64, oneof=0),
        _field("float_value", first + 2, _FLOAT, oneof=0),
        _field("double_value", first + 3, _DOUBLE, oneof=0),
        _field("boolean_value", first + 4, _BOOL, oneof=0),
        _field("string_value", first + 5, _STRING, oneof=0),
        _field("extension_value", first + 6, _MSG, message=extension, oneof=0),
    ]


def _template() -> descriptor_pb2.DescriptorProto:
    ext = "Payload.Template.Parameter.ParameterValueExtension"
    parameter = _message(
        "Parameter",
        [_field("name", 1, _STRING), _field("type", 2, _U32), *_scalar_values(3, ext)],
        nested=(_extension("ParameterValueExtension"),),
        oneofs=("value",),
    )
    return _message(
        "Template",
        [
            _field("version", 1, _STRING),
            _field("metrics", 2, _MSG, label=_REPEATED, message="Payload.Metric"),
            _field("parameters", 3, _MSG, label=_REPEATED, message="Payload.Template.Parameter"),
            _field("template_ref", 4, _STRING),
            _field("is_definition", 5, _BOOL),
        ],
        nested=(parameter,),
        extensions_from=6,
    )


def _dataset() -> descriptor_pb2.DescriptorProto:
    ext = "Payload.DataSet.DataSetValue.DataSetValueExtension"
    value = _message(
        "DataSetValue",
        _scalar_values(1, ext),
        nested=(_extension("DataSetValueExtension"),),
        oneofs=("value",),
    )
    row = _message(
        "Row",
        [_field("elements", 1, _MSG, label=_REPEATED, message="Payload.DataSet.DataSetValue")],
        extensions_from=2,
    )
    return _message(
        "DataSet",
        [
            _field("num_of_columns", 1, _U64),
            _field("columns", 2, _STRING, label=_REPEATED),
            _field("types", 3, _U32, label=_REPEATED),
            _field("rows", 4, _MSG, label=_REPEATED, message="Payload.DataSet.Row"),
        ],
        nested=(value, row),
        extensions_from=5,
    )


def _properties() -> list[descriptor_pb2.DescriptorProto]:
    value = _message(
        "PropertyValue",
        [
            _field("type", 1, _U32),
            _field("is_null", 2, _BOOL),
            _field("int_value", 3, _U32, oneof=0),
            _field("long_value", 4, _U64, oneof=0),
            _field("float_value", 5, _FLOAT, oneof=0),
            _field("double_value", 6, _DOUBLE, oneof=0),
            _field("boolean_value", 7, _BOOL, oneof=0),
            _field("string_value", 8, _STRING, oneof=0),
            _field("propertyset_value", 9, _MSG, message="Payload.PropertySet", oneof=0),
            _field("propertysets_value", 10, _MSG, message="Payload.PropertySetList", oneof=0),
            _field(
                "extension_value",
                11,
                _MSG,
                message="Payload.PropertyValue.PropertyValueExtension",
                oneof=0,
            ),
        ],
        nested=(_extension("PropertyValueExtension"),),
        oneofs=("value",),
    )
    property_set = _message(
        "PropertySet",
        [
            _field("keys", 1, _STRING, label=_REPEATED),
            _field("values", 2, _MSG, label=_REPEATED, message="Payload.PropertyValue"),
        ],
        extensions_from=3,
    )
    property_set_list = _message(
        "PropertySetList",
        [_field("propertyset", 1, _MSG, label=_REPEATED, message="Payload.PropertySet")],
        extensions_from=2,
    )
    return [value, property_set, property_set_list]


def _metadata() -> descriptor_pb2.DescriptorProto:
    return _message(
        "MetaData",
        [
            _field("is_multi_part", 1, _BOOL),
            _field("content_type", 2, _STRING),
            _field("size", 3, _U64),
            _field("seq", 4, _U64),
            _field("file_name", 5, _STRING),
            _field("file_type", 6, _STRING),
            _field("md5", 7, _STRING),
            _field("description", 8, _STRING),
        ],
        extensions_from=9,
    )


def _metric() -> descriptor_pb2.DescriptorProto:
    return _message(
        "Metric",
        [
            _field("name", 1, _STRING),
            _field("alias", 2, _U64),
            _field("timestamp", 3, _U64),
            _field("datatype", 4, _U32),
            _field("is_historical", 5, _BOOL),
            _field("is_transient", 6, _BOOL),
            _field("is_null", 7, _BOOL),
            _field("metadata", 8, _MSG, message="Payload.MetaData"),
            _field("properties", 9, _MSG, message="Payload.PropertySet"),
            _field("int_value", 10, _U32, oneof=0),
            _field("long_value", 11, _U64, oneof=0),
            _field("float_value", 12, _FLOAT, oneof=0),
            _field("double_value", 13, _DOUBLE, oneof=0),
            _field("boolean_value", 14, _BOOL, oneof=0),
            _field("string_value", 15, _STRING, oneof=0),
            _field("bytes_value", 16, _BYTES, oneof=0),
            _field("dataset_value", 17, _MSG, message="Payload.DataSet", oneof=0),
            _field("template_value", 18, _MSG, message="Payload.Template", oneof=0),
            _field(
                "extension_value",
                19,
                _MSG,
                message="Payload.Metric.MetricValueExtension",
                oneof=0,
            ),
        ],
        nested=(_extension("MetricValueExtension"),),
        oneofs=("value",),
    )


def _file() -> descriptor_pb2.FileDescriptorProto:
    payload = _message(
        "Payload",
        [
            _field("timestamp", 1, _U64),
            _field("metrics", 2, _MSG, label=_REPEATED, message="Payload.Metric"),
            _field("seq", 3, _U64),
            _field("uuid", 4, _STRING),
            _field("body", 5, _BYTES),
        ],
        nested=(_template(), _dataset(), *_properties(), _metadata(), _metric()),
        extensions_from=6,
    )
    file = descriptor_pb2.FileDescriptorProto(
        name="edge_agent/sparkplug_b.proto", package=_PACKAGE, syntax="proto2"
    )
    datatype = file.enum_type.add(name="DataType")
    for member in DataType:
        datatype.value.add(name=member.name, number=member.value)
    file.message_type.append(payload)
    return file


def _build() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))


Payload: Any = _build()
"""The Sparkplug B `Payload` message class; `Payload.Metric`, `Payload.PropertySet`, … nest in it."""
