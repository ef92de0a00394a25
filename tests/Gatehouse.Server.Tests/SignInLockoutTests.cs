using System.Diagnostics;
using Gatehouse.Server.Admins;
using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests;

/// <summary>The console's sign-in lockout, counted in the database, the same for addresses with and without an account.</summary>
public abstract class SignInLockoutTests<TServer>(TServer server) : IClassFixture<TServer>
    where TServer : GatehouseServer
{
    private const int Limit = 5;

    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Twenty_parallel_wrong_passwords_check_at_most_the_limit(bool accountExists)
    {
        var email = accountExists ? (await server.CreateAdminAsync()).Email : $"nobody-{Guid.NewGuid():n}@example.com";
        await server.FlushAuditAsync();
        var before = await LastAuditIdAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => SignInAsync(email, "wrong password, long enough"))));
        await server.FlushAuditAsync();

        Assert.All(answers, a => Assert.NotNull(a));
        await using var scope = server.Services.CreateAsyncScope();
        var reasons = await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents
            .Where(e => e.Id > before && e.Kind == "admin.sign_in_refused")
            .Select(e => e.Reason).ToListAsync();
        var checkedReasons = accountExists ? new[] { "wrong_password", "locked_out_now" } : ["unknown_account", "unknown_account_locked_out_now"];
        Assert.Equal(Limit, reasons.Count(r => checkedReasons.Contains(r)));
        Assert.Equal(20 - Limit, answers.Count(a => a!.StartsWith("This account is locked", StringComparison.Ordinal)));
    }

    [SkippableFact]
    public async Task An_address_without_an_account_answers_and_locks_exactly_as_one_with_an_account()
    {
        var known = (await server.CreateAdminAsync()).Email;
        var unknown = $"nobody-{Guid.NewGuid():n}@example.com";

        var knownAnswers = new List<string?>();
        var unknownAnswers = new List<string?>();
        for (var i = 0; i < Limit + 1; i++)
        {
            knownAnswers.Add(await SignInAsync(known, "wrong password, long enough"));
            unknownAnswers.Add(await SignInAsync(unknown, "wrong password, long enough"));
        }
        server.Clock.Advance(TimeSpan.FromMinutes(15));
        var knownAfterLock = await SignInAsync(known, "wrong password, long enough");
        var unknownAfterLock = await SignInAsync(unknown, "wrong password, long enough");

        Assert.Equal(knownAnswers, unknownAnswers);
        Assert.Equal(Enumerable.Repeat("The email or password is wrong.", Limit), knownAnswers.Take(Limit));
        Assert.StartsWith("This account is locked after 5 failed sign-ins.", knownAnswers[Limit], StringComparison.Ordinal);
        Assert.Equal("The email or password is wrong.", knownAfterLock);
        Assert.Equal(knownAfterLock, unknownAfterLock);
    }

    /// <summary>
    /// A coarse guard, not a benchmark: both paths run one PBKDF2 check, which dominates. Without the decoy check an
    /// unknown address answered some fifty times faster; a factor of three separates that from noise.
    /// </summary>
    [SkippableFact]
    public async Task An_unknown_address_takes_as_long_to_refuse_as_a_known_one()
    {
        var known = (await server.CreateAdminAsync()).Email;
        var knownTimes = new List<double>();
        var unknownTimes = new List<double>();
        for (var i = 0; i < 4; i++)
        {
            knownTimes.Add(await TimeAsync(known));
            unknownTimes.Add(await TimeAsync($"nobody-{Guid.NewGuid():n}@example.com"));
        }
        var ratio = Median(unknownTimes) / Median(knownTimes);

        Assert.InRange(ratio, 1 / 3.0, 3.0);
    }

    private async Task<long> LastAuditIdAsync()
    {
        await using var scope = server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDb>().AuditEvents.MaxAsync(e => (long?)e.Id) ?? 0;
    }

    private async Task<double> TimeAsync(string email)
    {
        var watch = Stopwatch.StartNew();
        await SignInAsync(email, "wrong password, long enough");
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>What the sign-in form does, each attempt with its own request scope (and so its own database context).</summary>
    private async Task<string?> SignInAsync(string email, string password)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var (_, error, _) = await scope.ServiceProvider.GetRequiredService<AdminAccounts>().SignInAsync(email, password, null);
        return error?.Message;
    }
}

[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Slow)]
public sealed class SignInLockoutTestsOnSqlite(SqliteServer server) : SignInLockoutTests<SqliteServer>(server);

[Collection(RunsAlone.Name)]
[Trait(Category.Name, Category.Postgres)]
public sealed class SignInLockoutTestsOnPostgres(PostgresServer server) : SignInLockoutTests<PostgresServer>(server);
