using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Gatehouse.Server.Tests;

/// <summary>Two servers, one evaluating the API's policies as Gatehouse does, one with the framework's evaluator only.</summary>
public sealed class EvaluatorPair : IAsyncLifetime
{
    public GatehouseServer Gatehouse { get; } = new();

    public GatehouseServer Framework { get; } = new()
    {
        Configure = builder => builder.Services.Replace(ServiceDescriptor.Transient<IPolicyEvaluator, PolicyEvaluator>()),
    };

    public async Task InitializeAsync()
    {
        await Gatehouse.InitializeAsync();
        await Framework.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await Gatehouse.DisposeAsync();
        await Framework.DisposeAsync();
    }
}

/// <summary>
/// The API's credential policies are evaluated without the framework's general dispatch (CredentialPolicyEvaluator);
/// every answer must stay the one the framework's evaluator gives: the same status, the same envelope, the same
/// headers that say why, for every credential, present or not, good or bad, and for mTLS refusals.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class CredentialPolicyEvaluatorTests(EvaluatorPair pair) : IClassFixture<EvaluatorPair>
{
    private sealed record Credentials(TestNetwork Network, string ServerKey, string AdminToken, TestNetwork MtlsNetwork, string MtlsServerKey);

    private static async Task<Credentials> CredentialsOnAsync(GatehouseServer server)
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var (adminToken, error) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        Assert.Null(error);
        var mtls = await server.CreateNetworkAsync(secureMode: true);
        var mtlsKey = await server.GenerateServerKeyAsync(mtls);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await server.IssueClientCertificateAsync(mtls, "backend",
            new CertificateRequest("CN=backend", key, HashAlgorithmName.SHA256).CreateSigningRequestPem());
        return new Credentials(network, serverKey, adminToken!, mtls, mtlsKey);
    }

    /// <summary>Each case: a request built from one server's own credentials.</summary>
    public static readonly TheoryData<string> Cases = new()
    {
        "mint without a key", "mint with an unknown key", "mint with the key", "mint v4 without userId", "mint with the key of an mTLS network, no certificate",
        "session without an API key", "session with an unknown API key", "user without a bearer token", "user with a malformed bearer token",
        "admin API without a token", "admin API with an unknown token", "admin API with the token", "admin API with a server key in its place",
        "logout without any credential", "backend session with a bearer token in place of the key",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_answer_is_the_frameworks(string name)
    {
        var expected = await AnswerAsync(pair.Framework, name);
        var actual = await AnswerAsync(pair.Gatehouse, name);

        Assert.Equal(expected, actual);
    }

    [Fact]
    public async Task The_comparison_sees_a_difference_between_answers()
    {
        // The control: two cases that differ must read as different, or the theory above would compare nothing.
        Assert.NotEqual(await AnswerAsync(pair.Gatehouse, "mint without a key"), await AnswerAsync(pair.Gatehouse, "mint with the key"));
        Assert.NotEqual(await AnswerAsync(pair.Gatehouse, "mint without a key"), await AnswerAsync(pair.Gatehouse, "mint with an unknown key"));
    }

    /// <summary>The status, the envelope's code and message (a success's body holds a fresh token: only its status), and WWW-Authenticate.</summary>
    private static async Task<string> AnswerAsync(GatehouseServer server, string name)
    {
        var credentials = await CredentialsOnAsync(server);
        using var request = Request(name, credentials);
        using var response = await server.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var challenge = string.Join(", ", response.Headers.WwwAuthenticate);
        return response.IsSuccessStatusCode
            ? $"{(int)response.StatusCode}"
            : $"{(int)response.StatusCode} {body} [{challenge}]";
    }

    private static HttpRequestMessage Request(string name, Credentials c)
    {
        const string mint = "/api/v3/authentication/token?userId=alice";
        return name switch
        {
            "mint without a key" => Get(mint),
            "mint with an unknown key" => Get(mint, ("x-server-key", "gsk_" + new string('A', 43))),
            "mint with the key" => Get(mint, ("x-server-key", c.ServerKey)),
            "mint v4 without userId" => Post("/api/v4/authentication/token", "{}", ("x-server-key", c.ServerKey)),
            "mint with the key of an mTLS network, no certificate" => Get(mint, ("x-server-key", c.MtlsServerKey)),
            "session without an API key" => Post("/api/v5/sessions", """{"userId":"alice","deviceId":"d1"}"""),
            "session with an unknown API key" => Post("/api/v5/sessions", """{"userId":"alice","deviceId":"d1"}""", ("x-api-key", "not-a-key")),
            "user without a bearer token" => Get("/api/v3/users/me"),
            "user with a malformed bearer token" => Get("/api/v3/users/me", ("authorization", "Bearer not.a.token")),
            "admin API without a token" => Get("/api/v4/admin/users"),
            "admin API with an unknown token" => Get("/api/v4/admin/users", ("x-admin-token", "gat_" + new string('A', 43))),
            "admin API with the token" => Get("/api/v4/admin/users", ("x-admin-token", c.AdminToken)),
            "admin API with a server key in its place" => Get("/api/v4/admin/users", ("x-admin-token", c.ServerKey)),
            "logout without any credential" => new HttpRequestMessage(HttpMethod.Delete, "/api/v4/sessions"),
            "backend session with a bearer token in place of the key" =>
                Post("/api/v5/server/sessions", """{"userId":"alice"}""", ("authorization", "Bearer not.a.token")),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "No such case."),
        };
    }

    private static HttpRequestMessage Get(string path, params (string Name, string Value)[] headers) => WithHeaders(new HttpRequestMessage(HttpMethod.Get, path), headers);

    private static HttpRequestMessage Post(string path, string json, params (string Name, string Value)[] headers) =>
        WithHeaders(new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") }, headers);

    private static HttpRequestMessage WithHeaders(HttpRequestMessage request, (string Name, string Value)[] headers)
    {
        foreach (var (name, value) in headers)
            request.Headers.TryAddWithoutValidation(name, value);
        return request;
    }
}

/// <summary>Every request of a scheme shares one successful result (AuthenticatedBy): nothing may write into it.</summary>
[Trait(Category.Name, Category.Fast)]
public sealed class SharedAuthenticationResultTests
{
    [Fact]
    public void A_schemes_shared_result_names_the_scheme_and_refuses_every_write()
    {
        var result = Gatehouse.Server.Api.Authentication.AuthenticatedBy.Scheme("server-key");
        var principal = result.Principal!;

        Assert.Same(result, Gatehouse.Server.Api.Authentication.AuthenticatedBy.Scheme("server-key"));
        Assert.NotSame(result, Gatehouse.Server.Api.Authentication.AuthenticatedBy.Scheme("admin-token"));
        Assert.Equal("server-key", Assert.Single(principal.Identities).AuthenticationType);
        Assert.True(principal.Identity!.IsAuthenticated);
        Assert.Throws<InvalidOperationException>(() => principal.Identities.Single().AddClaim(new System.Security.Claims.Claim("sub", "mallory")));
        Assert.Throws<InvalidOperationException>(() => principal.AddIdentity(new System.Security.Claims.ClaimsIdentity("cookie")));
        Assert.Throws<NotSupportedException>(() => result.Properties!.Items["returnUrl"] = "/elsewhere");
        Assert.Throws<NotSupportedException>(() => result.Properties!.Parameters["x"] = 1);
        Assert.Empty(principal.Claims);
        Assert.Single(principal.Identities);
    }
}
