using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace Gatehouse.Server.Storage;

/// <summary>
/// One PostgreSQL parameter holding a column's values for many rows, for statements whose text is the same whatever
/// the number of rows (<c>unnest($1, $2)</c>, <c>= ANY($1)</c>): prepared once, where a parameter per value made a
/// new text, parsed and planned again, for each number of rows (docs/benchmarks.md, change 52). The parameter is
/// positional (unnamed), so Npgsql sends the text as it is. The text must not cast it to the column's type: an
/// explicit cast to <c>varchar(n)</c> cuts a value too long, where assigning it to the column refuses it.
/// </summary>
internal static class PostgresArrays
{
    /// <param name="providerValues">Already converted by the column's mapping (<see cref="SqliteValues.ToProvider"/>).</param>
    public static NpgsqlParameter Of(IProperty property, RelationalTypeMapping mapping, IReadOnlyList<object?> providerValues)
    {
        var values = Array.CreateInstance(ElementType(property, mapping), providerValues.Count);
        for (var i = 0; i < providerValues.Count; i++)
            values.SetValue(providerValues[i], i);
        return new NpgsqlParameter { Value = values };
    }

    /// <summary>The type the column's values have once converted for the provider, nullable where the column is.</summary>
    private static Type ElementType(IProperty property, RelationalTypeMapping mapping) => mapping.Converter?.ProviderClrType is { } provider
        ? provider.IsValueType && property.IsNullable ? typeof(Nullable<>).MakeGenericType(provider) : provider
        : property.ClrType;
}
