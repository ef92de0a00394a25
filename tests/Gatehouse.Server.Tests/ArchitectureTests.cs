using Mono.Cecil;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The layering docs/architecture.md draws, checked on the compiled server (signatures and method bodies, closures
/// and async state machines included), so a change that breaks it fails the build's tests rather than a review.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class ArchitectureTests
{
    /// <summary>The protocol's rules: they take domain inputs and return refusals from the one catalogue.</summary>
    public static readonly TheoryData<string> ProtocolNamespaces = new()
    {
        "Gatehouse.Server.Sessions", "Gatehouse.Server.AuthTokens", "Gatehouse.Server.ServerKeys", "Gatehouse.Server.AdminTokens",
        "Gatehouse.Server.Certificates", "Gatehouse.Server.Users", "Gatehouse.Server.Networks", "Gatehouse.Server.Admins",
        "Gatehouse.Server.Audit", "Gatehouse.Server.Refusals", "Gatehouse.Server.Visitors",
    };

    private static readonly Lazy<ModuleDefinition> Server = new(() => ModuleDefinition.ReadModule(typeof(GatehouseApp).Assembly.Location));

    [Theory]
    [MemberData(nameof(ProtocolNamespaces))]
    public void The_protocol_rules_use_no_HTTP_type_and_nothing_of_the_HTTP_edge(string protocolNamespace)
    {
        var offences = ReferencesFrom(protocolNamespace)
            .Where(r => r.Used.StartsWith("Microsoft.AspNetCore.Http", StringComparison.Ordinal)
                || r.Used.StartsWith("Microsoft.AspNetCore.Mvc", StringComparison.Ordinal)
                || r.Used.StartsWith("Gatehouse.Server.Api", StringComparison.Ordinal)
                || r.Used.EndsWith(".Http", StringComparison.Ordinal))
            .Select(r => $"{r.User} uses {r.Used}.{r.Name}")
            .Distinct()
            .ToList();
        Assert.True(offences.Count == 0, string.Join('\n', offences));
    }

    [Fact]
    public void The_HTTP_edge_shared_by_every_feature_names_no_feature_endpoint()
    {
        var offences = ReferencesFrom("Gatehouse.Server.Api", includeChildren: true)
            .Where(r => r.Used.StartsWith("Gatehouse.Server.", StringComparison.Ordinal) && r.Used.EndsWith(".Http", StringComparison.Ordinal))
            .Select(r => $"{r.User} uses {r.Used}.{r.Name}")
            .Distinct()
            .ToList();
        Assert.True(offences.Count == 0, string.Join('\n', offences));
    }

    [Fact]
    public void The_check_sees_HTTP_types_where_they_are_used()
    {
        // The control: an endpoint folder does use them, so a check that found nothing would be blind, not clean.
        Assert.Contains(ReferencesFrom("Gatehouse.Server.Sessions.Http"), r => r.Used == "Microsoft.AspNetCore.Http" && r.Name == "HttpContext");
        Assert.Contains(ReferencesFrom("Gatehouse.Server.Certificates.Http"), r => r.Used == "Microsoft.AspNetCore.Http" && r.Name == "HttpContext");
    }

    private sealed record Reference(string User, string Used, string Name);

    private static List<Reference> ReferencesFrom(string ns, bool includeChildren = false)
    {
        var references = new List<Reference>();
        foreach (var type in Server.Value.Types.Where(t => t.Namespace == ns || (includeChildren && t.Namespace.StartsWith(ns + ".", StringComparison.Ordinal))))
        {
            foreach (var nested in WithNested(type))
            {
                foreach (var used in UsedBy(nested).SelectMany(Flattened))
                {
                    var top = Outermost(used);
                    references.Add(new Reference(type.FullName, top.Namespace, top.Name));
                }
            }
        }
        Assert.NotEmpty(references);
        return references;
    }

    private static IEnumerable<TypeDefinition> WithNested(TypeDefinition type) => type.NestedTypes.SelectMany(WithNested).Prepend(type);

    /// <summary>A constructed type and everything it is made of: <c>Task&lt;HttpContext&gt;</c> uses HttpContext too.</summary>
    private static IEnumerable<TypeReference> Flattened(TypeReference type)
    {
        yield return type;
        if (type is GenericInstanceType generic)
        {
            foreach (var argument in generic.GenericArguments.SelectMany(Flattened))
                yield return argument;
        }
        if (type is TypeSpecification { ElementType: { } element } && element != type)
        {
            foreach (var inner in Flattened(element))
                yield return inner;
        }
    }

    private static TypeReference Outermost(TypeReference type)
    {
        if (type is TypeSpecification { ElementType: { } element })
            type = element;
        while (type.DeclaringType is not null)
            type = type.DeclaringType;
        return type;
    }

    private static IEnumerable<TypeReference> UsedBy(TypeDefinition type)
    {
        if (type.BaseType is not null)
            yield return type.BaseType;
        foreach (var i in type.Interfaces)
            yield return i.InterfaceType;
        foreach (var attribute in type.CustomAttributes)
            yield return attribute.AttributeType;
        foreach (var field in type.Fields)
            yield return field.FieldType;
        foreach (var property in type.Properties)
            yield return property.PropertyType;
        foreach (var method in type.Methods)
        {
            yield return method.ReturnType;
            foreach (var parameter in method.Parameters)
                yield return parameter.ParameterType;
            if (!method.HasBody)
                continue;
            foreach (var variable in method.Body.Variables)
                yield return variable.VariableType;
            foreach (var instruction in method.Body.Instructions)
            {
                switch (instruction.Operand)
                {
                    case TypeReference t:
                        yield return t;
                        break;
                    case MethodReference m:
                        yield return m.DeclaringType;
                        yield return m.ReturnType;
                        foreach (var parameter in m.Parameters)
                            yield return parameter.ParameterType;
                        if (m is GenericInstanceMethod generic)
                        {
                            foreach (var argument in generic.GenericArguments)
                                yield return argument;
                        }
                        break;
                    case FieldReference f:
                        yield return f.DeclaringType;
                        yield return f.FieldType;
                        break;
                }
            }
        }
    }
}
