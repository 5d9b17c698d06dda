using System.IO;
using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>
/// Which namespaces of an assembly use which, read from its metadata: every type's base type,
/// interfaces, attributes, generic constraints, field, property, event and method signatures,
/// locals, catch clauses, and every type, field and method its IL names. Compiler-made types
/// (lambdas' closures, async state machines) count as the type they are nested in.
/// </summary>
internal static class NamespaceGraph
{
    /// <summary>One use of a namespace by another, with every pair of types that shows it ("User → Used").</summary>
    internal sealed record Edge(string From, string To, IReadOnlyList<string> Uses);

    /// <summary>The edges between namespaces that start with <paramref name="prefix"/> (a namespace's use of itself left out).</summary>
    internal static IReadOnlyList<Edge> Read(string assemblyPath, string prefix)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var reader = pe.GetMetadataReader();
        var edges = new Dictionary<(string From, string To), SortedSet<string>>();
        foreach (var handle in reader.TypeDefinitions)
        {
            var owner = Outermost(reader, handle);
            var from = reader.GetString(reader.GetTypeDefinition(owner).Namespace);
            if (!InScope(from, prefix))
                continue;
            var collector = new Collector(reader);
            collector.AddType(handle, pe);
            foreach (var used in collector.Types)
            {
                var usedOwner = Outermost(reader, used);
                var to = reader.GetString(reader.GetTypeDefinition(usedOwner).Namespace);
                if (to == from || !InScope(to, prefix))
                    continue;
                if (!edges.TryGetValue((from, to), out var uses))
                    edges[(from, to)] = uses = new SortedSet<string>(StringComparer.Ordinal);
                uses.Add($"{Name(reader, owner)} → {Name(reader, usedOwner)}");
            }
        }
        return [.. edges
            .OrderBy(e => e.Key.From, StringComparer.Ordinal).ThenBy(e => e.Key.To, StringComparer.Ordinal)
            .Select(e => new Edge(e.Key.From, e.Key.To, [.. e.Value]))];
    }

    /// <summary>The namespaces of the types defined in the assembly that start with <paramref name="prefix"/>.</summary>
    internal static IReadOnlySet<string> Namespaces(string assemblyPath, string prefix)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var reader = pe.GetMetadataReader();
        return reader.TypeDefinitions
            .Select(h => reader.GetString(reader.GetTypeDefinition(Outermost(reader, h)).Namespace))
            .Where(ns => InScope(ns, prefix))
            .ToHashSet(StringComparer.Ordinal);
    }

    private static bool InScope(string ns, string prefix) =>
        ns == prefix || ns.StartsWith(prefix + ".", StringComparison.Ordinal);

    private static TypeDefinitionHandle Outermost(MetadataReader reader, TypeDefinitionHandle handle)
    {
        var type = reader.GetTypeDefinition(handle);
        while (type.IsNested)
        {
            handle = type.GetDeclaringType();
            type = reader.GetTypeDefinition(handle);
        }
        return handle;
    }

    private static string Name(MetadataReader reader, TypeDefinitionHandle handle) =>
        reader.GetString(reader.GetTypeDefinition(handle).Name);

    /// <summary>The types of this assembly one type's metadata and IL name.</summary>
    private sealed class Collector(MetadataReader reader) : ISignatureTypeProvider<bool, object?>
    {
        private static readonly OpCode[] OneByte = new OpCode[0x100];
        private static readonly OpCode[] TwoByte = new OpCode[0x100];

        static Collector()
        {
            foreach (var field in typeof(OpCodes).GetFields())
            {
                if (field.GetValue(null) is not OpCode code)
                    continue;
                var value = (ushort)code.Value;
                if (value < 0x100)
                    OneByte[value] = code;
                else if ((value & 0xFF00) == 0xFE00)
                    TwoByte[value & 0xFF] = code;
            }
        }

        public HashSet<TypeDefinitionHandle> Types { get; } = [];

        public void AddType(TypeDefinitionHandle handle, PEReader pe)
        {
            var type = reader.GetTypeDefinition(handle);
            AddEntity(type.BaseType);
            foreach (var i in type.GetInterfaceImplementations())
                AddEntity(reader.GetInterfaceImplementation(i).Interface);
            AddAttributes(type.GetCustomAttributes());
            AddGenericParameters(type.GetGenericParameters());
            foreach (var f in type.GetFields())
            {
                var field = reader.GetFieldDefinition(f);
                field.DecodeSignature(this, null);
                AddAttributes(field.GetCustomAttributes());
            }
            foreach (var p in type.GetProperties())
            {
                var property = reader.GetPropertyDefinition(p);
                property.DecodeSignature(this, null);
                AddAttributes(property.GetCustomAttributes());
            }
            foreach (var e in type.GetEvents())
                AddEntity(reader.GetEventDefinition(e).Type);
            foreach (var m in type.GetMethods())
                AddMethod(reader.GetMethodDefinition(m), pe);
        }

        private void AddMethod(MethodDefinition method, PEReader pe)
        {
            method.DecodeSignature(this, null);
            AddAttributes(method.GetCustomAttributes());
            AddGenericParameters(method.GetGenericParameters());
            foreach (var p in method.GetParameters())
                AddAttributes(reader.GetParameter(p).GetCustomAttributes());
            if (method.RelativeVirtualAddress == 0)
                return;
            var body = pe.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil)
                reader.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(this, null);
            foreach (var region in body.ExceptionRegions)
                AddEntity(region.CatchType);
            AddIl(body.GetILReader());
        }

        private void AddIl(BlobReader il)
        {
            while (il.RemainingBytes > 0)
            {
                var first = il.ReadByte();
                var code = first == 0xFE ? TwoByte[il.ReadByte()] : OneByte[first];
                switch (code.OperandType)
                {
                    case OperandType.InlineField:
                    case OperandType.InlineMethod:
                    case OperandType.InlineTok:
                    case OperandType.InlineType:
                    case OperandType.InlineSig:
                        AddEntity(MetadataTokens.EntityHandle(il.ReadInt32()));
                        break;
                    case OperandType.InlineSwitch:
                        var targets = il.ReadInt32(); // read first: `Offset +=` would read Offset before the count
                        il.Offset += 4 * targets;
                        break;
                    default:
                        il.Offset += OperandSize(code.OperandType);
                        break;
                }
            }
        }

        /// <summary>The bytes of an operand that holds no token (skipped).</summary>
        private static int OperandSize(OperandType type) => type switch
        {
            OperandType.InlineI8 or OperandType.InlineR => 8,
            OperandType.InlineBrTarget or OperandType.InlineI or OperandType.InlineString or OperandType.ShortInlineR => 4,
            OperandType.InlineVar => 2,
            OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
            OperandType.InlineNone => 0,
            _ => throw new InvalidOperationException($"IL operand type {type} not read."),
        };

        private void AddAttributes(CustomAttributeHandleCollection attributes)
        {
            foreach (var a in attributes)
                AddEntity(reader.GetCustomAttribute(a).Constructor);
        }

        private void AddGenericParameters(GenericParameterHandleCollection parameters)
        {
            foreach (var p in parameters)
                foreach (var c in reader.GetGenericParameter(p).GetConstraints())
                    AddEntity(reader.GetGenericParameterConstraint(c).Type);
        }

        private void AddEntity(EntityHandle handle)
        {
            if (handle.IsNil)
                return;
            switch (handle.Kind)
            {
                case HandleKind.TypeDefinition:
                    Types.Add((TypeDefinitionHandle)handle);
                    break;
                case HandleKind.TypeSpecification:
                    reader.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, null);
                    break;
                case HandleKind.FieldDefinition:
                    var field = reader.GetFieldDefinition((FieldDefinitionHandle)handle);
                    Types.Add(field.GetDeclaringType());
                    field.DecodeSignature(this, null);
                    break;
                case HandleKind.MethodDefinition:
                    var method = reader.GetMethodDefinition((MethodDefinitionHandle)handle);
                    Types.Add(method.GetDeclaringType());
                    method.DecodeSignature(this, null);
                    break;
                case HandleKind.MemberReference:
                    var member = reader.GetMemberReference((MemberReferenceHandle)handle);
                    AddEntity(member.Parent);
                    if (member.GetKind() == MemberReferenceKind.Method)
                        member.DecodeMethodSignature(this, null);
                    else
                        member.DecodeFieldSignature(this, null);
                    break;
                case HandleKind.MethodSpecification:
                    var specification = reader.GetMethodSpecification((MethodSpecificationHandle)handle);
                    AddEntity(specification.Method);
                    specification.DecodeSignature(this, null);
                    break;
                case HandleKind.StandaloneSignature:
                    var signature = reader.GetStandaloneSignature((StandaloneSignatureHandle)handle);
                    if (signature.GetKind() == StandaloneSignatureKind.Method)
                        signature.DecodeMethodSignature(this, null);
                    else
                        signature.DecodeLocalSignature(this, null);
                    break;
                default:
                    // A type or member of another assembly, or a module reference: not this assembly's.
                    break;
            }
        }

        public bool GetTypeFromDefinition(MetadataReader metadata, TypeDefinitionHandle handle, byte rawTypeKind) => Types.Add(handle);
        public bool GetTypeFromReference(MetadataReader metadata, TypeReferenceHandle handle, byte rawTypeKind) => false;
        public bool GetTypeFromSpecification(MetadataReader metadata, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind)
        {
            metadata.GetTypeSpecification(handle).DecodeSignature(this, genericContext);
            return false;
        }
        public bool GetPrimitiveType(PrimitiveTypeCode typeCode) => false;
        public bool GetSZArrayType(bool elementType) => false;
        public bool GetArrayType(bool elementType, ArrayShape shape) => false;
        public bool GetByReferenceType(bool elementType) => false;
        public bool GetPointerType(bool elementType) => false;
        public bool GetPinnedType(bool elementType) => false;
        public bool GetGenericInstantiation(bool genericType, ImmutableArray<bool> typeArguments) => false;
        public bool GetGenericMethodParameter(object? genericContext, int index) => false;
        public bool GetGenericTypeParameter(object? genericContext, int index) => false;
        public bool GetModifiedType(bool modifier, bool unmodifiedType, bool isRequired) => false;
        public bool GetFunctionPointerType(MethodSignature<bool> signature) => false;
    }
}
