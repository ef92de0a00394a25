using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Configuration;

/// <summary>
/// The configuration errors an operator can fix, one line each: what the validator refused, and values the
/// configuration binder could not convert (a TimeSpan of "thirty-days"), a key-encryption key that is malformed or
/// not this deployment's. Anything else is not the configuration.
/// </summary>
internal static class ConfigurationProblems
{
    public static IReadOnlyList<string>? Of(Exception exception) => exception switch
    {
        OptionsValidationException invalid => [.. invalid.Failures],
        KeysAtRest.KeyEncryptionProblemException wrongKey => [wrongKey.Message],
        InvalidOperationException unconvertible when unconvertible.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal)
            => [unconvertible.Message],
        AggregateException all when all.InnerExceptions.Select(Of).ToList() is var each && each.All(p => p is not null)
            => [.. each.SelectMany(p => p!)],
        _ => null,
    };
}
