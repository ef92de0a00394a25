using Gatehouse.Server.Configuration;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Tests.Rules;

/// <summary>Which issuer tokens carry, and which a token of ours may carry and still be accepted.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class TokenIssuerTests
{
    [Fact]
    public void With_a_public_URL_tokens_carry_it_and_only_it_or_the_fixed_issuer_of_earlier_releases_is_accepted()
    {
        var issuer = IssuerWith("https://auth.example.com/");

        Assert.Equal("https://auth.example.com", issuer.Current);
        Assert.True(issuer.Accepts("https://auth.example.com"));
        Assert.True(issuer.Accepts("gatehouse"));
        Assert.False(issuer.Accepts("https://other.example.com"));
        Assert.False(issuer.Accepts("http://127.0.0.1:5080"));
        Assert.False(issuer.Accepts(null));
    }

    [Fact]
    public void Without_one_the_issuer_follows_the_listening_address_so_any_earlier_address_stays_accepted()
    {
        var issuer = IssuerWith(null);

        Assert.Equal("gatehouse", issuer.Current);
        Assert.True(issuer.Accepts("http://127.0.0.1:5080"));
        Assert.True(issuer.Accepts("gatehouse"));
        Assert.False(issuer.Accepts("someone-else"));
        Assert.False(issuer.Accepts("ftp://127.0.0.1"));
    }

    private static TokenIssuer IssuerWith(string? publicUrl) =>
        new(new ServiceCollection().BuildServiceProvider(), Options.Create(new GatehouseOptions { PublicUrl = publicUrl }));
}
